'use strict';
/**
 * The launch template's versions across a deploy that changes it, on the local emulator (moto 5.2.5, pinned in
 * scripts/local/requirements-moto.txt): the dev foundation's template (the committed snapshot of integ/integ.dev.ts)
 * created through CloudFormation, then updated with a larger root volume. CloudFormation adds a launch template
 * version on each change of LaunchTemplateData and never moves the default version ("AWS::EC2::LaunchTemplate",
 * CloudFormation reference, return values LatestVersionNumber and DefaultVersionNumber; cloudformation-coverage-roadmap
 * #1518), and moto does the same: a launch that names no version (or `$Default`) still gets version 1. That is why the
 * foundation publishes `LaunchTemplateVersion` (Fn::GetAtt LatestVersionNumber, checked in the template by
 * test/foundation/chronos-training-foundation.test.ts) and the launcher launches that version.
 *
 * What moto does not model: it leaves a resource whose properties only reference another's attribute un-updated, so
 * the `LaunchTemplateVersion` parameter keeps `1` after the update, where CloudFormation writes the new value. That
 * part is a canary: when a moto upgrade updates it, the test fails and should then expect `2`. The stack's output of the
 * same value is updated by moto; the second test writes it to the parameter, as CloudFormation does, and launches with
 * the real launcher (`chronos-training run --detach`): the instance comes from version 2.
 *
 *   node --test --test-reporter=tap test-e2e/launch-template-version.test.js
 */
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const moto = require('../scripts/local/moto');
const cdk = require('../scripts/local/cdk');
const { clients } = cdk;
const { launcher, launcherCommand, emulatorImage } = require('../scripts/local/run-loop');
const cfnc = require('@aws-sdk/client-cloudformation');
const ec2c = require('@aws-sdk/client-ec2');
const ssmc = require('@aws-sdk/client-ssm');
const s3c = require('@aws-sdk/client-s3');

const TEMPLATE = path.join(__dirname, '..', 'integ', 'integ.dev.ts.snapshot', 'ChronosTraining.template.json');
const STACK = 'ChronosTraining-dev-Stack';
let server;
let c;

before(async () => {
  server = await moto.start({ logFile: path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'chronos-lt-version-e2e-')), 'moto.log') });
  const { cfg } = clients(server.endpoint);
  c = { cfn: new cfnc.CloudFormationClient(cfg), ec2: new ec2c.EC2Client(cfg), ssm: new ssmc.SSMClient(cfg) };
  // What `cdk bootstrap` and `cdk deploy` would leave: the version parameter the template's BootstrapVersion reads, and
  // the run keeper's function code in the assets bucket (moto's Lambda reads it when the function is created; its
  // bytes are an empty zip archive here: nothing is invoked).
  await c.ssm.send(new ssmc.PutParameterCommand({ Name: '/cdk-bootstrap/hnb659fds/version', Value: '30', Type: 'String', Overwrite: true }));
  const s3 = new s3c.S3Client({ ...cfg, forcePathStyle: true });
  const functions = Object.values(JSON.parse(fs.readFileSync(TEMPLATE, 'utf8')).Resources).filter((r) => r.Type === 'AWS::Lambda::Function');
  for (const fn of functions) {
    const bucket = fn.Properties.Code.S3Bucket['Fn::Sub'].replace('${AWS::AccountId}', cdk.ACCOUNT);
    await s3.send(new s3c.CreateBucketCommand({ Bucket: bucket })).catch((e) => { if (e.name !== 'BucketAlreadyOwnedByYou') throw e; });
    await s3.send(new s3c.PutObjectCommand({ Bucket: bucket, Key: fn.Properties.Code.S3Key, Body: Buffer.from([0x50, 0x4b, 0x05, 0x06, ...Array(18).fill(0)]) }));
  }
});

after(async () => {
  if (server) await server.stop();
});

/** The snapshot template with the training launch template's root volume resized, its SSM parameters untagged (moto 5.2.5 reads their Tags map as a list). */
function template(rootVolumeSize) {
  const t = JSON.parse(fs.readFileSync(TEMPLATE, 'utf8'));
  for (const r of Object.values(t.Resources)) {
    if (r.Type === 'AWS::SSM::Parameter') delete r.Properties.Tags;
    if (r.Type === 'AWS::EC2::LaunchTemplate') r.Properties.LaunchTemplateData.BlockDeviceMappings[0].Ebs.VolumeSize = rootVolumeSize;
  }
  return JSON.stringify(t);
}

async function settled() {
  for (let i = 0; i < 240; i++) {
    const [stack] = (await c.cfn.send(new cfnc.DescribeStacksCommand({ StackName: STACK }))).Stacks;
    if (!stack.StackStatus.endsWith('_IN_PROGRESS')) return stack.StackStatus;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${STACK} did not settle`);
}

const parameter = async (suffix) =>
  (await c.ssm.send(new ssmc.GetParameterCommand({ Name: `/chronos-training/dev/${suffix}` }))).Parameter.Value;

async function rootVolume(templateId, version) {
  const reply = await c.ec2.send(new ec2c.DescribeLaunchTemplateVersionsCommand({ LaunchTemplateId: templateId, Versions: [version] }));
  return reply.LaunchTemplateVersions[0].LaunchTemplateData.BlockDeviceMappings[0].Ebs.VolumeSize;
}

test('a deploy that changes the launch template adds version 2; the default stays version 1', async () => {
  await c.cfn.send(new cfnc.CreateStackCommand({ StackName: STACK, TemplateBody: template(100), Capabilities: ['CAPABILITY_NAMED_IAM'] }));
  assert.equal(await settled(), 'CREATE_COMPLETE');
  const templateId = await parameter('LaunchTemplateId');
  assert.equal(await parameter('LaunchTemplateVersion'), '1', 'the first deploy publishes version 1');

  await c.cfn.send(new cfnc.UpdateStackCommand({ StackName: STACK, TemplateBody: template(120), Capabilities: ['CAPABILITY_NAMED_IAM'] }));
  assert.equal(await settled(), 'UPDATE_COMPLETE');
  assert.equal(await parameter('LaunchTemplateId'), templateId, 'the template is updated in place, not replaced');
  const [described] = (await c.ec2.send(new ec2c.DescribeLaunchTemplatesCommand({ LaunchTemplateIds: [templateId] }))).LaunchTemplates;
  assert.deepEqual([described.DefaultVersionNumber, described.LatestVersionNumber], [1, 2]);
  // What a launch gets: version 2 (the one LaunchTemplateVersion names on AWS) has the change, the default does not.
  assert.equal(await rootVolume(templateId, '2'), 120);
  assert.equal(await rootVolume(templateId, '$Latest'), 120);
  assert.equal(await rootVolume(templateId, '$Default'), 100, 'a launch without a version would boot the old template');

  // Canary: CloudFormation updates the parameter to 2 (its value is Fn::GetAtt LatestVersionNumber); moto does not.
  assert.equal(await parameter('LaunchTemplateVersion'), '1',
    'moto now updates LaunchTemplateVersion after the update: expect 2 here, the value CloudFormation writes');
});

test('the next launch after the update uses version 2: chronos-training run launches the version the foundation published', async () => {
  // On AWS, CloudFormation writes the new LatestVersionNumber to the parameter in the update; moto updates the stack's
  // output of it (below) but not the parameter (the canary above), so the test writes the output's value there.
  const [stack] = (await c.cfn.send(new cfnc.DescribeStacksCommand({ StackName: STACK }))).Stacks;
  const output = stack.Outputs.find((o) => o.ExportName === 'ChronosTraining-dev-LaunchTemplateVersion');
  assert.equal(output?.OutputValue, '2', `the stack's LaunchTemplateVersion output after the update: ${JSON.stringify(stack.Outputs)}`);
  await c.ssm.send(new ssmc.PutParameterCommand({ Name: '/chronos-training/dev/LaunchTemplateVersion', Value: output.OutputValue, Type: 'String', Overwrite: true }));

  // The Python run package's command, installed from its wheel (scripts/run-package-venv.sh).
  const command = launcherCommand();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'chronos-lt-version-run-'));
  const cwd = path.join(work, 'project');
  fs.mkdirSync(cwd);
  fs.writeFileSync(path.join(cwd, 'train.py'), 'print("hello")\n');
  // An AMI the emulator has: the launcher pins the default image's public `resolve:ssm:` parameter, which moto cannot hold.
  const image = await emulatorImage(server.endpoint);
  const r = await launcher(command, ['run', '--detach', '--env', 'dev', '--instance-types', 'g5.xlarge', '--image-id', image, '--', 'python3', 'train.py'],
    { endpoint: server.endpoint, cwd });
  assert.equal(r.code, 0, r.stdout);
  const runId = /run (\S+)/.exec(r.stdout.split('\n').find((l) => l.startsWith('[chronos] run ')) ?? '')?.[1];
  assert.ok(runId, r.stdout);
  const instances = (await c.ec2.send(new ec2c.DescribeInstancesCommand({ Filters: [{ Name: 'tag:ChronosRunId', Values: [runId] }] })))
    .Reservations.flatMap((x) => x.Instances);
  assert.equal(instances.length, 1, r.stdout);
  // moto stamps the launch template version an instance was launched from, as EC2 does (aws:ec2launchtemplate:version).
  const tags = Object.fromEntries(instances[0].Tags.map((t) => [t.Key, t.Value]));
  assert.equal(tags['aws:ec2launchtemplate:version'], '2', JSON.stringify(tags));
});
