'use strict';
/**
 * End-to-end on a local AWS API emulator (moto server, pinned in scripts/local/requirements-moto.txt),
 * through the CDK CLI as a user deploys to AWS: `cdk bootstrap`, then `cdk deploy` of the sample app in
 * integ/ (default synthesizer) for dev and stage side by side; check through the emulator's S3, EC2, IAM
 * and CloudFormation APIs what it really models, read an export with the launch script's query, update dev with
 * `cdk deploy` and a changed cost center, `cdk destroy` dev (the RETAIN bucket and its object survive,
 * stage is untouched), then stage.
 *
 *   node --test --test-reporter=tap 'test-e2e/*.test.js'      (E2E_VERBOSE=1: show the CLI's output)
 *
 * A fresh moto is started on a free 127.0.0.1 port and stopped in `after` whatever happens. The CLI and
 * every client are bound to that loopback endpoint (scripts/local/moto.js refuses anything else). New
 * checks deploy with extra context: emu.deploy({ environment, costCenter, someKey: 'value' }).
 *
 * What moto accepts but ignores (security group egress rules, MapPublicIpOnLaunch, VPC DNS flags,
 * bucket lifecycle rules, public access block, bucket policy; inline policy documents come back as
 * Python repr) is NOT checked here: the template-level jest tests in test/ cover it. The canary
 * tests at the end only assert that moto still ignores those, so a moto upgrade that starts
 * modelling one of them gets noticed (then: move that check into the main tests).
 */
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { execFile } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { promisify } = require('node:util');

const cdk = require('../scripts/local/cdk');
const { assertLoopback } = require('../scripts/local/moto');
const { tagsToObject, templateResource, emulatorWithSampleApp } = require('./helpers');

const ec2c = require('@aws-sdk/client-ec2');
const s3c = require('@aws-sdk/client-s3');
const iamc = require('@aws-sdk/client-iam');
const cfnc = require('@aws-sdk/client-cloudformation');
const ssmc = require('@aws-sdk/client-ssm');

const T0 = Date.now();
const { ACCOUNT: EMULATOR_ACCOUNT, REGION } = cdk;
const ENVS = ['dev', 'stage'];
const COST_CENTER = 'train'; // the sample app's default (integ/cdk.json)
const NEW_COST_CENTER = 'collect';
const DEV = cdk.stackNameFor('dev');
const STAGE = cdk.stackNameFor('stage');
const timings = [];
const timing = (what, s) => { timings.push(`${what}: ${s.toFixed(2)} s`); console.log(`${what}: ${s.toFixed(2)} s`); };

let emu; // the emulator and the sample app's cdk deploy / destroy on it
let c; // SDK clients bound to it
const tpl = {}; // env -> synthesized template of the first deploy
const x = {}; // env -> { VPCId, PublicSubnetId, ... } from ListExports after the first deploy

before(async () => {
  emu = await emulatorWithSampleApp();
  const { cfg } = cdk.clients(emu.endpoint);
  c = {
    cfn: new cfnc.CloudFormationClient(cfg), ec2: new ec2c.EC2Client(cfg),
    s3: new s3c.S3Client({ ...cfg, forcePathStyle: true }), iam: new iamc.IAMClient(cfg), ssm: new ssmc.SSMClient(cfg),
  };
  timing('moto start + cdk bootstrap', (Date.now() - T0) / 1000);
});

after(async () => {
  // Always stop the emulator, whatever the outcome of before() and the tests.
  if (emu) await emu.stop();
  console.log(`timings: ${timings.join('; ')}`);
  console.log(`e2e total wall time: ${((Date.now() - T0) / 1000).toFixed(1)} s`);
});

async function stackResources(stackName) {
  const r = await c.cfn.send(new cfnc.DescribeStackResourcesCommand({ StackName: stackName }));
  return r.StackResources || [];
}

async function stackOutputs(stackName) {
  const s = (await c.cfn.send(new cfnc.DescribeStacksCommand({ StackName: stackName }))).Stacks[0];
  return Object.fromEntries((s.Outputs || []).filter((o) => o.ExportName).map((o) => [o.ExportName, o.OutputValue]));
}

/** Neither the stack's VPC nor any VPC tagged as the stack's is left. */
async function assertNoVpcOf(stackName, vpcId) {
  const tagged = (await c.ec2.send(new ec2c.DescribeVpcsCommand({
    Filters: [{ Name: 'tag:aws:cloudformation:stack-name', Values: [stackName] }],
  }))).Vpcs;
  assert.deepEqual(tagged.map((v) => v.VpcId), [], `VPCs tagged ${stackName}`);
  await assert.rejects(c.ec2.send(new ec2c.DescribeVpcsCommand({ VpcIds: [vpcId] })), /does not exist/);
}

async function bucketTags(bucket) {
  return tagsToObject((await c.s3.send(new s3c.GetBucketTaggingCommand({ Bucket: bucket }))).TagSet);
}

test('the CDK CLI gets no AWS_* variable of the caller, and only loopback endpoints are accepted', () => {
  const { env, removed } = cdk.cliEnv('http://localhost:1', {
    PATH: '/bin', AWS_PROFILE: 'prod', AWS_ACCESS_KEY_ID: 'AKIAREAL', AWS_SECRET_ACCESS_KEY: 'real', AWS_SESSION_TOKEN: 't',
    AWS_CONFIG_FILE: '/home/u/.aws/config', AWS_SHARED_CREDENTIALS_FILE: '/home/u/.aws/credentials', AWS_ENDPOINT_URL_S3: 'https://s3.amazonaws.com',
  });
  assert.deepEqual(removed, ['AWS_ACCESS_KEY_ID', 'AWS_CONFIG_FILE', 'AWS_ENDPOINT_URL_S3', 'AWS_PROFILE', 'AWS_SECRET_ACCESS_KEY',
    'AWS_SESSION_TOKEN', 'AWS_SHARED_CREDENTIALS_FILE']);
  assert.deepEqual(Object.keys(env).filter((k) => k.startsWith('AWS_')).sort(), ['AWS_ACCESS_KEY_ID', 'AWS_CONFIG_FILE', 'AWS_DEFAULT_REGION',
    'AWS_EC2_METADATA_DISABLED', 'AWS_ENDPOINT_URL', 'AWS_REGION', 'AWS_SECRET_ACCESS_KEY', 'AWS_SHARED_CREDENTIALS_FILE']);
  assert.equal(env.AWS_ACCESS_KEY_ID, 'testing');
  assert.equal(fs.readFileSync(env.AWS_CONFIG_FILE, 'utf8'), '');
  assert.equal(env.AWS_SHARED_CREDENTIALS_FILE, env.AWS_CONFIG_FILE);
  for (const bad of ['https://cloudformation.us-east-1.amazonaws.com', 'http://localhost.example.com:5000', 'http://10.0.0.1:5000', 'nonsense']) {
    assert.throws(() => cdk.cliEnv(bad), /refusing endpoint/, bad);
  }
  assert.equal(assertLoopback('http://127.0.0.1:5000'), 'http://127.0.0.1:5000');
});

test('cdk deploy dev and stage side by side, all exports the template declares listed', async () => {
  for (const env of ENVS) {
    const r = await emu.deploy({ environment: env, costCenter: COST_CENTER });
    assert.ok(r.template.Parameters.BootstrapVersion, 'default synthesizer (BootstrapVersion parameter)');
    tpl[env] = r.template;
    timing(`cdk deploy ${r.stackName}`, r.seconds);
  }
  const all = await cdk.listExports(emu.endpoint);
  for (const env of ENVS) {
    x[env] = {};
    const names = cdk.exportNamesOf(tpl[env]);
    assert.equal(names.length, 12); // FoundationExports.suffixes(): the eight core exports, subnets, zones, launch template and its version
    for (const name of names) {
      assert.ok(all[name], `export ${name} is listed`);
      x[env][name.slice(`ChronosTraining-${env}-`.length)] = all[name];
    }
    assert.equal(x[env].Environment, env);
    assert.equal(x[env].CostCenter, COST_CENTER);
  }
});

for (const env of ENVS) {
  test(`${env}: VPC, /24 subnet, route 0.0.0.0/0 to the attached internet gateway, S3 gateway endpoint, security group`, async () => {
    const e = x[env];
    const tplVpc = templateResource(tpl[env], 'AWS::EC2::VPC').props;
    const tplSubnet = templateResource(tpl[env], 'AWS::EC2::Subnet').props;

    const vpc = (await c.ec2.send(new ec2c.DescribeVpcsCommand({ VpcIds: [e.VPCId] }))).Vpcs[0];
    assert.equal(vpc.CidrBlock, tplVpc.CidrBlock);
    const vpcRes = (await stackResources(cdk.stackNameFor(env))).find((r) => r.ResourceType === 'AWS::EC2::VPC');
    assert.equal(vpcRes.PhysicalResourceId, e.VPCId, 'the VPCId export is the stack\'s VPC');

    const subnet = (await c.ec2.send(new ec2c.DescribeSubnetsCommand({ SubnetIds: [e.PublicSubnetId] }))).Subnets[0];
    assert.equal(subnet.VpcId, e.VPCId);
    assert.match(subnet.CidrBlock, /\/24$/);
    assert.equal(subnet.CidrBlock, tplSubnet.CidrBlock);
    assert.ok(subnet.AvailabilityZone.startsWith(REGION), `subnet AZ ${subnet.AvailabilityZone}`);

    const igws = (await c.ec2.send(new ec2c.DescribeInternetGatewaysCommand({
      Filters: [{ Name: 'attachment.vpc-id', Values: [e.VPCId] }],
    }))).InternetGateways;
    assert.equal(igws.length, 1, 'one internet gateway attached to the VPC');
    const igwId = igws[0].InternetGatewayId;
    assert.deepEqual(igws[0].Attachments.map((a) => a.VpcId), [e.VPCId]);

    // moto does not expose the CloudFormation subnet association through DescribeRouteTables
    // (association.subnet-id), so the route table is found by VPC and route.
    const rts = (await c.ec2.send(new ec2c.DescribeRouteTablesCommand({
      Filters: [{ Name: 'vpc-id', Values: [e.VPCId] }],
    }))).RouteTables;
    const publicRt = rts.find((rt) => rt.Routes.some((r) => r.DestinationCidrBlock === '0.0.0.0/0' && r.GatewayId === igwId));
    assert.ok(publicRt, 'a route table in the VPC with 0.0.0.0/0 -> the internet gateway');

    const eps = (await c.ec2.send(new ec2c.DescribeVpcEndpointsCommand({
      Filters: [{ Name: 'vpc-id', Values: [e.VPCId] }],
    }))).VpcEndpoints;
    assert.equal(eps.length, 1);
    assert.equal(eps[0].ServiceName, `com.amazonaws.${REGION}.s3`);
    assert.equal(eps[0].VpcEndpointType, 'Gateway');
    assert.deepEqual(eps[0].RouteTableIds, [publicRt.RouteTableId], 'the S3 endpoint is on the public route table');

    const sg = (await c.ec2.send(new ec2c.DescribeSecurityGroupsCommand({ GroupIds: [e.SecurityGroupId] }))).SecurityGroups[0];
    assert.equal(sg.VpcId, e.VPCId);
  });

  test(`${env}: bucket (name, SSE-S3, four tags), role with its four inline policies, instance profile`, async () => {
    const e = x[env];
    const bucket = `chronos-training-${env}-${EMULATOR_ACCOUNT}-${REGION}`;
    assert.equal(e.S3BucketName, bucket);
    await c.s3.send(new s3c.HeadBucketCommand({ Bucket: bucket }));
    const enc = await c.s3.send(new s3c.GetBucketEncryptionCommand({ Bucket: bucket }));
    assert.deepEqual(enc.ServerSideEncryptionConfiguration.Rules.map((r) => r.ApplyServerSideEncryptionByDefault.SSEAlgorithm), ['AES256']);
    const tags = await bucketTags(bucket);
    assert.deepEqual(
      { Project: tags.Project, Environment: tags.Environment, CostCenter: tags.CostCenter, ManagedBy: tags.ManagedBy },
      { Project: 'Chronos-Training', Environment: env, CostCenter: COST_CENTER, ManagedBy: 'CDK' });

    const role = (await c.iam.send(new iamc.GetRoleCommand({ RoleName: e.IAMRoleName }))).Role;
    const trust = JSON.parse(decodeURIComponent(role.AssumeRolePolicyDocument));
    assert.deepEqual(trust.Statement.map((s) => [s.Effect, s.Action, s.Principal.Service]),
      [['Allow', 'sts:AssumeRole', 'ec2.amazonaws.com']]);
    const pols = (await c.iam.send(new iamc.ListRolePoliciesCommand({ RoleName: e.IAMRoleName }))).PolicyNames;
    // The guide's three, and the run secrets' (issue 30).
    assert.deepEqual([...pols].sort(), ['EC2SelfManagement', 'ReadRunSecrets', 'S3ReadAccess', 'S3WriteAccess']);

    assert.equal(e.InstanceProfileName, `ChronosTrainingInstanceProfile-${env}`);
    const prof = (await c.iam.send(new iamc.GetInstanceProfileCommand({ InstanceProfileName: e.InstanceProfileName }))).InstanceProfile;
    assert.deepEqual(prof.Roles.map((r) => r.RoleName), [e.IAMRoleName]);
  });
}

test('the launch script\'s query: list-exports Exports[?Name==\'ChronosTraining-dev-VPCId\'].Value is the dev VPC', async () => {
  // SDK equivalent of: aws cloudformation list-exports --query "Exports[?Name=='ChronosTraining-dev-VPCId'].Value" --output text
  const exportsList = [];
  let NextToken;
  do {
    const r = await c.cfn.send(new cfnc.ListExportsCommand({ NextToken }));
    exportsList.push(...(r.Exports || []));
    NextToken = r.NextToken;
  } while (NextToken);
  const values = exportsList.filter((e) => e.Name === 'ChronosTraining-dev-VPCId').map((e) => e.Value);
  const vpcs = (await c.ec2.send(new ec2c.DescribeVpcsCommand({
    Filters: [{ Name: 'tag:Environment', Values: ['dev'] }, { Name: 'tag:Project', Values: ['Chronos-Training'] }],
  }))).Vpcs;
  assert.equal(vpcs.length, 1);
  assert.deepEqual(values, [vpcs[0].VpcId]);
});

test('the launch script\'s query with the AWS CLI, if installed (--endpoint-url on loopback)', async (t) => {
  const cli = process.env.PATH.split(path.delimiter).map((d) => path.join(d, 'aws')).find((p) => fs.existsSync(p));
  if (!cli) { t.skip('aws CLI not on PATH'); return; }
  const { stdout } = await promisify(execFile)('aws', ['cloudformation', 'list-exports',
    '--endpoint-url', emu.endpoint, '--query', "Exports[?Name=='ChronosTraining-dev-VPCId'].Value", '--output', 'text'],
  { env: cdk.cliEnv(emu.endpoint).env, timeout: 60000 });
  assert.equal(stdout.trim(), x.dev.VPCId);
});

test('stage resources are distinct from dev', async () => {
  for (const s of ['VPCId', 'PublicSubnetId', 'S3BucketName', 'IAMRoleName', 'InstanceProfileName', 'SecurityGroupId']) {
    assert.notEqual(x.stage[s], x.dev[s], s);
  }
  assert.equal(x.stage.S3BucketName, `chronos-training-stage-${EMULATOR_ACCOUNT}-${REGION}`);
  assert.equal(x.stage.InstanceProfileName, 'ChronosTrainingInstanceProfile-stage');
});

test('the README launch: run-instances with the stage exports and launch template; the instance gets its tags, subnet, group (profile: in the template)', async () => {
  const all = await cdk.listExports(emu.endpoint);
  const value = (suffix) => all[`ChronosTraining-stage-${suffix}`];
  assert.ok(value('LaunchTemplateId'), 'ChronosTraining-stage-LaunchTemplateId is listed');
  const imageId = (await c.ec2.send(new ec2c.DescribeImagesCommand({}))).Images[0].ImageId;
  // SDK equivalent of the README's `aws ec2 run-instances --launch-template LaunchTemplateId=...,Version=$Latest
  // --subnet-id ... --image-id ... --instance-type ...` (moto has its own AMIs).
  const launched = await c.ec2.send(new ec2c.RunInstancesCommand({
    LaunchTemplate: { LaunchTemplateId: value('LaunchTemplateId'), Version: '$Latest' },
    SubnetId: value('PublicSubnetId'), ImageId: imageId, InstanceType: 'g4dn.xlarge', MinCount: 1, MaxCount: 1,
  }));
  const id = launched.Instances[0].InstanceId;
  try {
    const i = (await c.ec2.send(new ec2c.DescribeInstancesCommand({ InstanceIds: [id] }))).Reservations[0].Instances[0];
    const tags = tagsToObject(i.Tags);
    assert.deepEqual(
      Object.fromEntries(['Project', 'Environment', 'CostCenter', 'MaxLifetimeHours', 'ManagedBy'].map((k) => [k, tags[k]])),
      // The 4-hour run lifetime plus the 900 s boot, drain and backstop margin (issue 27).
      { Project: 'Chronos-Training', Environment: 'stage', CostCenter: COST_CENTER, MaxLifetimeHours: '4.25', ManagedBy: 'chronos-launch-template' });
    assert.equal(i.SubnetId, value('PublicSubnetId'));
    assert.deepEqual(i.SecurityGroups.map((g) => g.GroupId), [value('SecurityGroupId')]);
    // moto does not apply the template's instance profile to the instance (canary below): check the template.
    const version = (await c.ec2.send(new ec2c.DescribeLaunchTemplateVersionsCommand({
      LaunchTemplateId: value('LaunchTemplateId'), Versions: ['$Latest'],
    }))).LaunchTemplateVersions[0];
    assert.match(version.LaunchTemplateData.IamInstanceProfile?.Arn ?? '(none)', /instance-profile\/ChronosTrainingInstanceProfile-stage$/);
    assert.equal(i.IamInstanceProfile, undefined, 'canary: moto now applies the template\'s instance profile; check it on the instance');
  } finally {
    await c.ec2.send(new ec2c.TerminateInstancesCommand({ InstanceIds: [id] }));
  }
});

test(`update dev (cdk deploy again): costCenter ${COST_CENTER} -> ${NEW_COST_CENTER} shows in the stack outputs and the bucket tag`, async () => {
  const r = await emu.deploy({ environment: 'dev', costCenter: NEW_COST_CENTER });
  assert.match(r.output, /updating stack/);
  timing(`cdk deploy (update) ${DEV}`, r.seconds);
  const stack = (await c.cfn.send(new cfnc.DescribeStacksCommand({ StackName: DEV }))).Stacks[0];
  assert.equal(stack.StackStatus, 'UPDATE_COMPLETE');
  // Where moto models an update: stack Outputs and bucket tags (not ListExports, not EC2 resources).
  assert.equal((await stackOutputs(DEV))['ChronosTraining-dev-CostCenter'], NEW_COST_CENTER);
  assert.equal((await cdk.listExports(emu.endpoint))['ChronosTraining-dev-CostCenter'], COST_CENTER,
    'canary (moto still ignores): ListExports keeps the value of before the update');
  const tags = await bucketTags(x.dev.S3BucketName);
  assert.equal(tags.CostCenter, NEW_COST_CENTER);
  assert.equal(tags.Environment, 'dev');
  assert.equal((await bucketTags(x.stage.S3BucketName)).CostCenter, COST_CENTER, 'stage bucket unchanged');
});

test('cdk destroy dev (+ the moto cleanup): the RETAIN bucket and an object put before survive; no VPC left; stage untouched', async () => {
  const bucket = x.dev.S3BucketName;
  const Key = 'dev/checkpoints/keep-me.txt';
  await c.s3.send(new s3c.PutObjectCommand({ Bucket: bucket, Key, Body: 'epoch 42' }));

  const r = await emu.destroy({ environment: 'dev', costCenter: NEW_COST_CENTER });
  timing(`cdk destroy ${DEV}`, r.seconds);
  await assertNoVpcOf(DEV, x.dev.VPCId);

  await c.s3.send(new s3c.HeadBucketCommand({ Bucket: bucket }));
  const obj = await c.s3.send(new s3c.GetObjectCommand({ Bucket: bucket, Key }));
  assert.equal(await obj.Body.transformToString(), 'epoch 42');
  await assert.rejects(c.iam.send(new iamc.GetRoleCommand({ RoleName: x.dev.IAMRoleName })), { name: 'NoSuchEntityException' },
    'the role went with the stack');

  await assert.rejects(c.cfn.send(new cfnc.DescribeStacksCommand({ StackName: DEV })), /does not exist/);
  const all = await cdk.listExports(emu.endpoint);
  for (const s of Object.keys(x.dev)) {
    assert.equal(all[`ChronosTraining-dev-${s}`], undefined, `dev export ${s} removed`);
    assert.equal(all[`ChronosTraining-stage-${s}`], x.stage[s], `stage export ${s} still listed, unchanged`);
  }
  const stage = (await c.cfn.send(new cfnc.DescribeStacksCommand({ StackName: STAGE }))).Stacks[0];
  assert.equal(stage.StackStatus, 'CREATE_COMPLETE');
  assert.equal((await c.ec2.send(new ec2c.DescribeVpcsCommand({ VpcIds: [x.stage.VPCId] }))).Vpcs.length, 1);
  await c.s3.send(new s3c.HeadBucketCommand({ Bucket: x.stage.S3BucketName }));
  await c.iam.send(new iamc.GetInstanceProfileCommand({ InstanceProfileName: x.stage.InstanceProfileName }));
});

// -------------------------------------------------------------------------------------------------
// Canaries: NOT checks of the library. They assert that moto still ignores features the template
// sets (checked by the template-level jest tests instead). If one fails after a moto upgrade, moto
// now models that feature: replace the canary with a real check above.

test('canary (moto still ignores): security group egress rules (template: tcp/443 only; moto: allow-all)', async () => {
  const sg = (await c.ec2.send(new ec2c.DescribeSecurityGroupsCommand({ GroupIds: [x.stage.SecurityGroupId] }))).SecurityGroups[0];
  assert.deepEqual(sg.IpPermissionsEgress.map((p) => [p.IpProtocol, p.IpRanges.map((i) => i.CidrIp)]), [['-1', ['0.0.0.0/0']]]);
});

test('canary (moto still ignores): subnet MapPublicIpOnLaunch and VPC EnableDnsHostnames (template: true)', async () => {
  const sn = (await c.ec2.send(new ec2c.DescribeSubnetsCommand({ SubnetIds: [x.stage.PublicSubnetId] }))).Subnets[0];
  assert.equal(sn.MapPublicIpOnLaunch, false);
  const h = await c.ec2.send(new ec2c.DescribeVpcAttributeCommand({ VpcId: x.stage.VPCId, Attribute: 'enableDnsHostnames' }));
  assert.equal(h.EnableDnsHostnames.Value, false);
});

test('canary (moto still ignores): bucket lifecycle rules, public access block, bucket policy (enforceSSL)', async () => {
  const Bucket = x.stage.S3BucketName;
  await assert.rejects(c.s3.send(new s3c.GetBucketLifecycleConfigurationCommand({ Bucket })), { name: 'NoSuchLifecycleConfiguration' });
  await assert.rejects(c.s3.send(new s3c.GetPublicAccessBlockCommand({ Bucket })), { name: 'NoSuchPublicAccessBlockConfiguration' });
  await assert.rejects(c.s3.send(new s3c.GetBucketPolicyCommand({ Bucket })), { name: 'NoSuchBucketPolicy' });
});

test('canary (moto still mangles): inline role policy documents come back as a Python repr, not JSON', async () => {
  const p = await c.iam.send(new iamc.GetRolePolicyCommand({ RoleName: x.stage.IAMRoleName, PolicyName: 'S3ReadAccess' }));
  assert.throws(() => JSON.parse(decodeURIComponent(p.PolicyDocument)));
  assert.match(decodeURIComponent(p.PolicyDocument), /'Statement'/);
});

// -------------------------------------------------------------------------------------------------

test('cdk destroy stage, never updated (moto needs its VPC dependents removed first): stack, exports, VPC gone; bucket kept', async () => {
  const r = await emu.destroy({ environment: 'stage' });
  timing(`cdk destroy ${STAGE}`, r.seconds);
  await assert.rejects(c.cfn.send(new cfnc.DescribeStacksCommand({ StackName: STAGE })), /does not exist/);
  const all = await cdk.listExports(emu.endpoint);
  assert.deepEqual(Object.keys(all).filter((n) => n.startsWith('ChronosTraining-')), []);
  await assertNoVpcOf(STAGE, x.stage.VPCId);
  await c.s3.send(new s3c.HeadBucketCommand({ Bucket: x.stage.S3BucketName }));
});

test('three zones: one public subnet per zone, read back through an export and through an SSM parameter', async () => {
  const env = 'zones';
  const r = await emu.deploy({ environment: env, maxAzs: 3 });
  timing(`cdk deploy ${cdk.stackNameFor(env)} (maxAzs 3)`, r.seconds);
  const exported = await cdk.listExports(emu.endpoint);
  const subnetIds = exported[`ChronosTraining-${env}-PublicSubnetIds`].split(',');
  const zones = exported[`ChronosTraining-${env}-AvailabilityZones`].split(',');
  assert.equal(subnetIds.length, 3);
  assert.equal(subnetIds[0], exported[`ChronosTraining-${env}-PublicSubnetId`]);
  const subnets = (await c.ec2.send(new ec2c.DescribeSubnetsCommand({ SubnetIds: subnetIds }))).Subnets;
  const zoneOf = Object.fromEntries(subnets.map((s) => [s.SubnetId, s.AvailabilityZone]));
  assert.deepEqual(subnetIds.map((id) => zoneOf[id]), zones);
  assert.equal(new Set(zones).size, 3, `three distinct zones: ${zones}`);
  assert.ok(subnets.every((s) => s.VpcId === exported[`ChronosTraining-${env}-VPCId`]));
  // The same values as SSM parameters, which other stacks read without locking them.
  for (const suffix of ['PublicSubnetIds', 'AvailabilityZones', 'VPCId']) {
    const p = await c.ssm.send(new ssmc.GetParameterCommand({ Name: `/chronos-training/${env}/${suffix}` }));
    assert.equal(p.Parameter.Value, exported[`ChronosTraining-${env}-${suffix}`], suffix);
  }
});

test('the run reaper and the run keeper deploy through the CLI: their function assets are published to the bootstrap bucket, and each function, rule and dead-letter queue exists', async () => {
  const env = 'reaper';
  const r = await emu.deploy({ environment: env, maxRunLifetimeHours: 6 });
  timing(`cdk deploy ${cdk.stackNameFor(env)} (maxRunLifetime 6 h)`, r.seconds);
  const resources = await stackResources(cdk.stackNameFor(env));
  const listed = await c.s3.send(new s3c.ListObjectsV2Command({ Bucket: `cdk-hnb659fds-assets-${cdk.ACCOUNT}-${cdk.REGION}` }));
  for (const prefix of ['FoundationReaper', 'FoundationKeeper']) {
    const ofType = (type) => resources.filter((x) => x.ResourceType === type && x.LogicalResourceId.startsWith(prefix));
    for (const type of ['AWS::Lambda::Function', 'AWS::Events::Rule', 'AWS::SQS::Queue']) {
      assert.equal(ofType(type).length, 1, `${prefix} ${type}`);
      assert.match(ofType(type)[0].ResourceStatus, /_COMPLETE$/, `${prefix} ${type}`);
    }
    // The function's code is the asset the CLI published to the bootstrap bucket (no Docker: nothing is invoked).
    const key = r.template.Resources[ofType('AWS::Lambda::Function')[0].LogicalResourceId].Properties.Code.S3Key;
    assert.ok((listed.Contents || []).some((o) => o.Key === key), `${prefix}: asset ${key} in the bootstrap bucket`);
  }
});
