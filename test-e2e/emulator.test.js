'use strict';
/**
 * End-to-end on a local AWS API emulator (moto server, pinned in scripts/local/requirements-moto.txt):
 * deploy ChronosTraining-dev-Stack and ChronosTraining-stage-Stack side by side from the sample app
 * in integ/, check through the emulator's S3, EC2, IAM and CloudFormation APIs what it really
 * models, read an export with the guide's query, update dev with a changed prop, delete dev and
 * check the RETAIN bucket and its object survive while stage is untouched.
 *
 *   node --test --test-reporter=tap 'test-e2e/*.test.js'
 *
 * A fresh moto is started on a free 127.0.0.1 port and stopped in `after` whatever happens. Every
 * client is bound to that loopback endpoint (scripts/local/aws-env.js refuses anything else).
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

const { startMoto } = require('../scripts/local/moto-server');
const { clients, emulatorEnv, EMULATOR_ACCOUNT, REGION } = require('../scripts/local/aws-env');
const cfnlib = require('../scripts/local/cfn');
const { tmpRoot, tagsToObject, synthAll, templateResource, secs } = require('./helpers');

const ec2c = require('@aws-sdk/client-ec2');
const s3c = require('@aws-sdk/client-s3');
const iamc = require('@aws-sdk/client-iam');
const cfnc = require('@aws-sdk/client-cloudformation');

const T0 = Date.now();
const ENVS = ['dev', 'stage'];
const COST_CENTER = 'train'; // the sample app's default (integ/cdk.json)
const NEW_COST_CENTER = 'collect';
const DEV = cfnlib.stackNameFor('dev');
const STAGE = cfnlib.stackNameFor('stage');
const VERBOSE = Boolean(process.env.E2E_VERBOSE); // print the deploy progress
const log = VERBOSE ? (m) => console.log(`${m}`) : () => {};
const timings = [];
const timing = (what, ms) => { timings.push(`${what}: ${secs(ms)}`); console.log(`${what}: ${secs(ms)}`); };

let moto;
let c;
let outRoot;
let dirs = {};
const art = {}; // key -> { template, templateBody, tags }
const x = {}; // env -> { VPCId, PublicSubnetId, ... } from ListExports after the first deploy

before(async () => {
  outRoot = tmpRoot('chronos-e2e-');
  const t = Date.now();
  // Synthesize (no emulator needed) and start the emulator at the same time.
  // allSettled: if synthesis fails, the emulator is still recorded so that after() stops it.
  const [d, m] = await Promise.allSettled([
    synthAll(outRoot, [
      { key: 'dev', environment: 'dev', costCenter: COST_CENTER },
      { key: 'stage', environment: 'stage', costCenter: COST_CENTER },
      { key: 'dev-collect', environment: 'dev', costCenter: NEW_COST_CENTER },
    ]),
    startMoto({ logFile: path.join(outRoot, 'moto.log') }),
  ]);
  if (m.status === 'fulfilled') moto = m.value;
  for (const r of [d, m]) if (r.status === 'rejected') throw r.reason;
  dirs = d.value;
  c = clients(moto.endpoint);
  for (const key of Object.keys(dirs)) {
    const env = key.split('-')[0];
    art[key] = cfnlib.readStackArtifact(dirs[key], cfnlib.stackNameFor(env));
  }
  console.log(`moto ${moto.endpoint} (pid ${moto.pid}); 3 syntheses + emulator start: ${secs(Date.now() - t)}`);
});

after(async () => {
  // Always stop the emulator, whatever the outcome of before() and the tests.
  if (moto) await moto.stop();
  if (outRoot && !process.env.E2E_KEEP_TMP) fs.rmSync(outRoot, { recursive: true, force: true });
  console.log(`timings: ${timings.join('; ')}`);
  console.log(`e2e total wall time: ${secs(Date.now() - T0)}`);
});

function deploy(key) {
  const env = key.split('-')[0];
  const a = art[key];
  return cfnlib.deployStack({
    cfn: c.cfn, s3: c.s3, ec2: c.ec2, endpoint: moto.endpoint, stackName: cfnlib.stackNameFor(env),
    templateBody: a.templateBody, template: a.template, tags: a.tags, log,
  });
}

async function stackResources(stackName) {
  const r = await c.cfn.send(new cfnc.DescribeStackResourcesCommand({ StackName: stackName }));
  return r.StackResources || [];
}

async function stackOutputs(stackName) {
  const s = (await c.cfn.send(new cfnc.DescribeStacksCommand({ StackName: stackName }))).Stacks[0];
  return Object.fromEntries((s.Outputs || []).filter((o) => o.ExportName).map((o) => [o.ExportName, o.OutputValue]));
}

async function bucketTags(bucket) {
  return tagsToObject((await c.s3.send(new s3c.GetBucketTaggingCommand({ Bucket: bucket }))).TagSet);
}

test('deploy dev and stage side by side (CreateStack), all eight exports listed', async () => {
  for (const env of ENVS) {
    const r = await deploy(env);
    assert.equal(r.action, 'create');
    assert.equal(r.status, 'CREATE_COMPLETE');
    timing(`deploy ${cfnlib.stackNameFor(env)}`, r.seconds * 1000);
  }
  const all = await cfnlib.listExports(c.cfn);
  for (const env of ENVS) {
    x[env] = {};
    for (const s of cfnlib.EXPORT_SUFFIXES) {
      const name = `ChronosTraining-${env}-${s}`;
      assert.ok(all[name], `export ${name} is listed`);
      x[env][s] = all[name];
    }
    assert.equal(x[env].Environment, env);
    assert.equal(x[env].CostCenter, COST_CENTER);
  }
});

for (const env of ENVS) {
  test(`${env}: VPC, /24 subnet, route 0.0.0.0/0 to the attached internet gateway, S3 gateway endpoint, security group`, async () => {
    const e = x[env];
    const tplVpc = templateResource(art[env].template, 'AWS::EC2::VPC').props;
    const tplSubnet = templateResource(art[env].template, 'AWS::EC2::Subnet').props;

    const vpc = (await c.ec2.send(new ec2c.DescribeVpcsCommand({ VpcIds: [e.VPCId] }))).Vpcs[0];
    assert.equal(vpc.CidrBlock, tplVpc.CidrBlock);
    const vpcRes = (await stackResources(cfnlib.stackNameFor(env))).find((r) => r.ResourceType === 'AWS::EC2::VPC');
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

  test(`${env}: bucket (name, SSE-S3, four tags), role with its three inline policies, instance profile`, async () => {
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
    assert.deepEqual([...pols].sort(), ['EC2SelfManagement', 'S3ReadAccess', 'S3WriteAccess']);

    assert.equal(e.InstanceProfileName, `ChronosTrainingInstanceProfile-${env}`);
    const prof = (await c.iam.send(new iamc.GetInstanceProfileCommand({ InstanceProfileName: e.InstanceProfileName }))).InstanceProfile;
    assert.deepEqual(prof.Roles.map((r) => r.RoleName), [e.IAMRoleName]);
  });
}

test('the guide\'s query: list-exports Exports[?Name==\'ChronosTraining-dev-VPCId\'].Value is the dev VPC', async () => {
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

test('the guide\'s query with the AWS CLI, if installed (--endpoint-url on loopback)', async (t) => {
  const cli = process.env.PATH.split(path.delimiter).map((d) => path.join(d, 'aws')).find((p) => fs.existsSync(p));
  if (!cli) { t.skip('aws CLI not on PATH'); return; }
  const { stdout } = await promisify(execFile)('aws', ['cloudformation', 'list-exports',
    '--endpoint-url', moto.endpoint, '--query', "Exports[?Name=='ChronosTraining-dev-VPCId'].Value", '--output', 'text'],
  { env: emulatorEnv(moto.endpoint), timeout: 60000 });
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
  const all = await cfnlib.listExports(c.cfn);
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
      { Project: 'Chronos-Training', Environment: 'stage', CostCenter: COST_CENTER, MaxLifetimeHours: '4', ManagedBy: 'chronos-launch-template' });
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

test(`update dev (UpdateStack): costCenter ${COST_CENTER} -> ${NEW_COST_CENTER} shows in the stack outputs and the bucket tag`, async () => {
  const r = await deploy('dev-collect');
  assert.equal(r.action, 'update');
  assert.equal(r.status, 'UPDATE_COMPLETE');
  timing(`update ${DEV}`, r.seconds * 1000);
  // Where moto models an update: stack Outputs and bucket tags (not ListExports, not EC2 resources).
  assert.equal((await stackOutputs(DEV))['ChronosTraining-dev-CostCenter'], NEW_COST_CENTER);
  const tags = await bucketTags(x.dev.S3BucketName);
  assert.equal(tags.CostCenter, NEW_COST_CENTER);
  assert.equal(tags.Environment, 'dev');
  assert.equal((await bucketTags(x.stage.S3BucketName)).CostCenter, COST_CENTER, 'stage bucket unchanged');
});

test('delete dev (DeleteStack): the RETAIN bucket and an object put before survive; stage untouched', async () => {
  const bucket = x.dev.S3BucketName;
  const Key = 'dev/checkpoints/keep-me.txt';
  await c.s3.send(new s3c.PutObjectCommand({ Bucket: bucket, Key, Body: 'epoch 42' }));

  const r = await cfnlib.deleteStack({ cfn: c.cfn, ec2: c.ec2, stackName: DEV, log });
  assert.equal(r.status, 'DELETE_COMPLETE');
  timing(`delete ${DEV}`, r.seconds * 1000);

  await c.s3.send(new s3c.HeadBucketCommand({ Bucket: bucket }));
  const obj = await c.s3.send(new s3c.GetObjectCommand({ Bucket: bucket, Key }));
  assert.equal(await obj.Body.transformToString(), 'epoch 42');
  await assert.rejects(c.iam.send(new iamc.GetRoleCommand({ RoleName: x.dev.IAMRoleName })), { name: 'NoSuchEntityException' },
    'the role went with the stack');

  // By name only: DescribeStacks by StackId on a deleted stack would make moto re-create resources.
  await assert.rejects(c.cfn.send(new cfnc.DescribeStacksCommand({ StackName: DEV })), /does not exist/);
  const all = await cfnlib.listExports(c.cfn);
  for (const s of cfnlib.EXPORT_SUFFIXES) {
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
