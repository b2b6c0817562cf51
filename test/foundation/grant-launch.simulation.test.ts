/*
 * grantLaunch: what a role given it may do with chronos-training, as a table of requests evaluated by the IAM policy
 * simulator against the synthesized policies (owned foundation), and the same grant on an imported foundation. The
 * table is in docs/IAM.md. Condition keys: Service Authorization Reference, "Actions, resources, and condition keys
 * for Amazon EC2" (ec2:LaunchTemplate, ec2:CreateAction, ec2:ResourceTag/${TagKey}, ec2:Region); IAM User Guide,
 * "Grant a user permissions to pass a role to an AWS service" (iam:PassedToService). The default image
 * (`resolve:ssm:` of the DLAMI's public parameter): EC2 User Guide, "Use a Systems Manager parameter instead of an AMI
 * ID" (ssm:GetParameters); the image ARN has no account: `arn:${Partition}:ec2:${Region}::image/${ImageId}` (Service
 * Authorization Reference, EC2 resource types).
 */
import * as fs from 'fs';
import * as path from 'path';
import { App, CfnResource, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import { ChronosTrainingFoundation, ChronosTrainingStack } from '../../src';
import { ACCOUNT, instanceArn as instance, LAUNCH_TEMPLATE_ID, REGION, resolver, SECURITY_GROUP_ID, simulate, SimulationRow as Row, VPC_ID } from '../iam-simulation';

const BUCKET = `chronos-training-dev-${ACCOUNT}-${REGION}`;
const TEMPLATE = `arn:aws:ec2:${REGION}:${ACCOUNT}:launch-template/${LAUNCH_TEMPLATE_ID}`;
const OTHER_TEMPLATE = `arn:aws:ec2:${REGION}:${ACCOUNT}:launch-template/lt-0fffffffffffffff0`;
const object = (key: string) => `arn:aws:s3:::${BUCKET}/${key}`;
const ec2 = (type: string, id: string) => `arn:aws:ec2:${REGION}:${ACCOUNT}:${type}/${id}`;
const devTags = { Project: 'Chronos-Training', Environment: 'dev' };
/** The tags the launcher sets on an instance and its volumes (chronos-training/src/chronos_training/ec2launch.py, launch_tags), as request tags. */
const launchTags = (tags: Record<string, string> = {}) => Object.fromEntries(Object.entries({
  ...devTags, ManagedBy: 'chronos-training', MaxLifetimeHours: '4.25', ...tags,
}).filter(([, v]) => v !== '').map(([k, v]) => [`aws:RequestTag/${k}`, v]));
const fromTemplate = { 'ec2:LaunchTemplate': TEMPLATE };
const VPC = `arn:aws:ec2:${REGION}:${ACCOUNT}:vpc/${VPC_ID}`;
const SPOT_ROLE = `arn:aws:iam::${ACCOUNT}:role/aws-service-role/spot.amazonaws.com/AWSServiceRoleForEC2Spot`;
/**
 * A public parameter. SSM reports those with no account (`arn:aws:ssm:us-east-1::parameter/aws/service/...`), which
 * the simulator cannot parse (no.resource.types), so the rows use the test account, and 'the grant matches a public
 * parameter's ARN, which has no account' checks the real form against the statement.
 */
const publicParameter = (name: string) => `arn:aws:ssm:${REGION}:${ACCOUNT}:parameter${name}`;
const DLAMI_PARAMETER = '/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-amazon-linux-2023/latest/ami-id';
const IMAGE = `arn:aws:ec2:${REGION}::image/ami-0123456789abcdef0`;

/** The instance role's ARN is filled in from the template (it has a generated name). */
function rows(instanceRoleArn: string): Row[] {
  return [
    // chronos-training run
    { request: 'read the foundation\'s parameters', action: 'ssm:GetParametersByPath', resource: `arn:aws:ssm:${REGION}:${ACCOUNT}:parameter/chronos-training/dev`, allowed: true },
    { request: 'read one parameter', action: 'ssm:GetParameter', resource: `arn:aws:ssm:${REGION}:${ACCOUNT}:parameter/chronos-training/dev/LaunchTemplateId`, allowed: true },
    { request: 'read the launch template\'s default version', action: 'ec2:DescribeLaunchTemplateVersions', resource: '*', allowed: true },
    { request: 'upload a code blob', action: 's3:PutObject', resource: object('dev/code/blobs/ab12'), allowed: true },
    { request: 'check a code blob is there (HEAD)', action: 's3:GetObject', resource: object('dev/code/blobs/ab12'), allowed: true },
    { request: 'write a run spec', action: 's3:PutObject', resource: object('dev/runs/r1/spec.json'), allowed: true },
    // Tags required on the instance and volume resources: EC2 User Guide, "Example policies to control access the
    // Amazon EC2 API", "Launch instances (RunInstances)"; the VPC: ec2:Vpc on subnet and network-interface (Service
    // Authorization Reference, Amazon EC2).
    { request: 'launch an instance from the template, with the launcher\'s tags', action: 'ec2:RunInstances', resource: ec2('instance', '*'), context: { ...fromTemplate, ...launchTags() }, allowed: true },
    { request: 'create its root volume, with the launcher\'s tags', action: 'ec2:RunInstances', resource: ec2('volume', '*'), context: { ...fromTemplate, ...launchTags() }, allowed: true },
    { request: 'use a subnet of the foundation\'s VPC through the template', action: 'ec2:RunInstances', resource: ec2('subnet', 'subnet-0aaaaaaaaaaaaaaa1'), context: { ...fromTemplate, 'ec2:Vpc': VPC }, allowed: true },
    { request: 'create a network interface in the foundation\'s VPC', action: 'ec2:RunInstances', resource: ec2('network-interface', '*'), context: { ...fromTemplate, 'ec2:Vpc': VPC }, allowed: true },
    { request: 'use the foundation\'s security group through the template', action: 'ec2:RunInstances', resource: ec2('security-group', SECURITY_GROUP_ID), context: fromTemplate, allowed: true },
    { request: 'use the template', action: 'ec2:RunInstances', resource: TEMPLATE, context: { 'ec2:LaunchTemplate': TEMPLATE }, allowed: true },
    // The default image, `resolve:ssm:` of the DLAMI's public parameter: EC2 reads it with the caller's ssm:GetParameters.
    { request: 'resolve the Deep Learning AMI parameter at launch (resolve:ssm:)', action: 'ssm:GetParameters', resource: publicParameter(DLAMI_PARAMETER), allowed: true },
    { request: 'resolve the arm64 Deep Learning AMI parameter (g5g)', action: 'ssm:GetParameters', resource: publicParameter(DLAMI_PARAMETER.replace('x86_64', 'arm64')), allowed: true },
    { request: 'use an image (the DLAMI, --image-id) through the template', action: 'ec2:RunInstances', resource: IMAGE, context: { 'ec2:LaunchTemplate': TEMPLATE }, allowed: true },
    { request: 'request a spot instance', action: 'ec2:RunInstances', resource: ec2('spot-instances-request', '*'), allowed: true },
    // EC2 User Guide, "Service-linked role for Spot Instance requests": an API caller must make sure the role exists.
    { request: 'create the Spot service-linked role (first spot launch of the account)', action: 'iam:CreateServiceLinkedRole', resource: SPOT_ROLE, context: { 'iam:AWSServiceName': 'spot.amazonaws.com' }, allowed: true },
    // A foundation deployed with ssmParameters: false is read from its exports (ListExports: no resource-level permissions).
    { request: 'list the exports (a foundation without SSM parameters)', action: 'cloudformation:ListExports', resource: '*', allowed: true },
    { request: 'tag the instance at launch', action: 'ec2:CreateTags', resource: ec2('instance', '*'), context: { 'ec2:CreateAction': 'RunInstances' }, allowed: true },
    { request: 'pass the instance role to EC2', action: 'iam:PassRole', resource: instanceRoleArn, context: { 'iam:PassedToService': 'ec2.amazonaws.com' }, allowed: true },
    // logs, status, list, stop
    { request: 'read a log chunk', action: 's3:GetObject', resource: object('dev/logs/r1/001/stdout/0000000000.log'), allowed: true },
    { request: 'list a run\'s logs', action: 's3:ListBucket', resource: `arn:aws:s3:::${BUCKET}`, context: { 's3:prefix': 'dev/logs/r1/' }, allowed: true },
    { request: 'list the runs', action: 's3:ListBucket', resource: `arn:aws:s3:::${BUCKET}`, context: { 's3:prefix': 'dev/runs/' }, allowed: true },
    { request: 'read a checkpoint manifest', action: 's3:GetObject', resource: object('dev/checkpoints/r1/manifests/0000000001.json'), allowed: true },
    { request: 'describe instances', action: 'ec2:DescribeInstances', resource: '*', allowed: true },
    { request: 'list a run\'s attempt records (status: the run cost)', action: 's3:ListBucket', resource: `arn:aws:s3:::${BUCKET}`, context: { 's3:prefix': 'dev/runs/r1/attempts/' }, allowed: true },
    { request: 'read an attempt record', action: 's3:GetObject', resource: object('dev/runs/r1/attempts/001.json'), allowed: true },
    { request: 'read the spot price history (status: the run cost)', action: 'ec2:DescribeSpotPriceHistory', resource: '*', allowed: true },
    { request: 'read on-demand prices from the Price List API (status: the run cost)', action: 'pricing:GetProducts', resource: '*', allowed: true },
    { request: 'write control.json (stop)', action: 's3:PutObject', resource: object('dev/runs/r1/control.json'), allowed: true },
    { request: 'terminate a dev run\'s instance (stop --now)', action: 'ec2:TerminateInstances', resource: instance('i-0aaaaaaaaaaaaaaa1'), context: tagContext(devTags), allowed: true },
    // What it may not do
    { request: 'launch from another launch template', action: 'ec2:RunInstances', resource: ec2('instance', '*'), context: { 'ec2:LaunchTemplate': OTHER_TEMPLATE }, allowed: false },
    { request: 'launch without a launch template', action: 'ec2:RunInstances', resource: ec2('instance', '*'), context: launchTags(), allowed: false },
    { request: 'launch an instance without tags', action: 'ec2:RunInstances', resource: ec2('instance', '*'), context: fromTemplate, allowed: false },
    { request: 'launch an instance tagged for prod', action: 'ec2:RunInstances', resource: ec2('instance', '*'), context: { ...fromTemplate, ...launchTags({ Environment: 'prod' }) }, allowed: false },
    { request: 'launch an instance tagged as Batch\'s, which the reaper skips', action: 'ec2:RunInstances', resource: ec2('instance', '*'), context: { ...fromTemplate, ...launchTags({ ManagedBy: 'chronos-batch' }) }, allowed: false },
    { request: 'launch an instance without a MaxLifetimeHours tag', action: 'ec2:RunInstances', resource: ec2('instance', '*'), context: { ...fromTemplate, ...launchTags({ MaxLifetimeHours: '' }) }, allowed: false },
    { request: 'create an untagged volume', action: 'ec2:RunInstances', resource: ec2('volume', '*'), context: fromTemplate, allowed: false },
    { request: 'use a subnet of another VPC', action: 'ec2:RunInstances', resource: ec2('subnet', 'subnet-0bbbbbbbbbbbbbbb2'), context: { ...fromTemplate, 'ec2:Vpc': ec2('vpc', 'vpc-0fffffffffffffff0') }, allowed: false },
    { request: 'use another security group', action: 'ec2:RunInstances', resource: ec2('security-group', 'sg-0fffffffffffffff0'), context: fromTemplate, allowed: false },
    { request: 'create another service\'s service-linked role', action: 'iam:CreateServiceLinkedRole', resource: `arn:aws:iam::${ACCOUNT}:role/aws-service-role/elasticbeanstalk.amazonaws.com/AWSServiceRoleForElasticBeanstalk`, context: { 'iam:AWSServiceName': 'elasticbeanstalk.amazonaws.com' }, allowed: false },
    { request: 'create the Spot role\'s path for another service', action: 'iam:CreateServiceLinkedRole', resource: SPOT_ROLE, context: { 'iam:AWSServiceName': 'ecs.amazonaws.com' }, allowed: false },
    { request: 'use another launch template', action: 'ec2:RunInstances', resource: OTHER_TEMPLATE, context: { 'ec2:LaunchTemplate': OTHER_TEMPLATE }, allowed: false },
    { request: 'pass another role', action: 'iam:PassRole', resource: `arn:aws:iam::${ACCOUNT}:role/Admin`, context: { 'iam:PassedToService': 'ec2.amazonaws.com' }, allowed: false },
    { request: 'pass the instance role to Lambda', action: 'iam:PassRole', resource: instanceRoleArn, context: { 'iam:PassedToService': 'lambda.amazonaws.com' }, allowed: false },
    { request: 'tag an existing instance', action: 'ec2:CreateTags', resource: ec2('instance', 'i-0aaaaaaaaaaaaaaa1'), context: { 'ec2:CreateAction': 'CreateTags' }, allowed: false },
    { request: 'write another environment\'s runs', action: 's3:PutObject', resource: object('prod/runs/r1/spec.json'), allowed: false },
    { request: 'read another environment\'s runs', action: 's3:GetObject', resource: object('prod/runs/r1/status.json'), allowed: false },
    { request: 'write into the logs', action: 's3:PutObject', resource: object('dev/logs/r1/001/stdout/0000000000.log'), allowed: false },
    { request: 'overwrite a checkpoint', action: 's3:PutObject', resource: object('dev/checkpoints/r1/manifests/0000000001.json'), allowed: false },
    { request: 'delete a run\'s files', action: 's3:DeleteObject', resource: object('dev/runs/r1/spec.json'), allowed: false },
    { request: 'overwrite a cached dataset', action: 's3:PutObject', resource: object('cached-datasets/prices.parquet'), allowed: false },
    { request: 'list the whole bucket', action: 's3:ListBucket', resource: `arn:aws:s3:::${BUCKET}`, allowed: false },
    { request: 'use an image without the template', action: 'ec2:RunInstances', resource: IMAGE, allowed: false },
    { request: 'read another public parameter', action: 'ssm:GetParameters', resource: publicParameter('/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64'), allowed: false },
    { request: 'read the account\'s other parameters', action: 'ssm:GetParameters', resource: `arn:aws:ssm:${REGION}:${ACCOUNT}:parameter/prod/database/password`, allowed: false },
    { request: 'read the Deep Learning AMI parameters by path', action: 'ssm:GetParametersByPath', resource: publicParameter('/aws/service/deeplearning/ami'), allowed: false },
    { request: 'read another environment\'s parameters', action: 'ssm:GetParametersByPath', resource: `arn:aws:ssm:${REGION}:${ACCOUNT}:parameter/chronos-training/prod`, allowed: false },
    { request: 'terminate another project\'s instance', action: 'ec2:TerminateInstances', resource: instance('i-0ddddddddddddddd4'), context: tagContext({ Project: 'Other', Environment: 'dev' }), allowed: false },
    { request: 'terminate a prod instance', action: 'ec2:TerminateInstances', resource: instance('i-0ccccccccccccccc3'), context: tagContext({ Project: 'Chronos-Training', Environment: 'prod' }), allowed: false },
    { request: 'terminate a dev Batch instance', action: 'ec2:TerminateInstances', resource: instance('i-0eeeeeeeeeeeeeee5'), context: tagContext({ ...devTags, ManagedBy: 'chronos-batch' }), allowed: false },
  ];
}

function tagContext(tags: Record<string, string>): Record<string, string> {
  return { 'ec2:Region': REGION, ...Object.fromEntries(Object.entries(tags).map(([k, v]) => [`ec2:ResourceTag/${k}`, v])) };
}

type Policies = Array<{ name: string; policy: any }>;

function policiesOf(stack: Stack, role: iam.Role, refs: Record<string, string> = {}): Policies {
  const resources = Template.fromStack(stack).toJSON().Resources;
  const resolve = resolver(resources, refs);
  return Object.values(resources)
    .filter((r: any) => r.Type === 'AWS::IAM::Policy'
      && JSON.stringify(r.Properties.Roles) === JSON.stringify([{ Ref: stack.getLogicalId(role.node.defaultChild as CfnResource) }]))
    .map((r: any) => ({ name: r.Properties.PolicyName, policy: resolve(r.Properties.PolicyDocument) }));
}

function owned() {
  const stack = new ChronosTrainingStack(new App(), 'ChronosTraining-dev-Stack', { environmentName: 'dev', env: { account: ACCOUNT, region: REGION } });
  const launcher = new iam.Role(stack, 'Launcher', { assumedBy: new iam.AccountRootPrincipal() });
  stack.foundation.grantLaunch(launcher);
  const resources = Template.fromStack(stack).toJSON().Resources;
  const instanceRoleArn = resolver(resources)({ 'Fn::GetAtt': [stack.getLogicalId(stack.foundation.role.node.defaultChild as CfnResource), 'Arn'] });
  return { policies: policiesOf(stack, launcher), instanceRoleArn };
}

/** An imported dev foundation: its SSM parameter references resolved to the values the owned one publishes. */
function imported(instanceRoleArn: string) {
  const stack = new Stack(new App(), 'Launchers', { env: { account: ACCOUNT, region: REGION } });
  const foundation = ChronosTrainingFoundation.fromEnvironment(stack, 'Dev', 'dev');
  const launcher = new iam.Role(stack, 'Launcher', { assumedBy: new iam.AccountRootPrincipal() });
  foundation.grantLaunch(launcher);
  const parameters = Template.fromStack(stack).toJSON().Parameters ?? {};
  const values: Record<string, string> = {
    S3BucketName: BUCKET, LaunchTemplateId: LAUNCH_TEMPLATE_ID, IAMRoleName: instanceRoleArn.split('/').pop()!, VPCId: VPC_ID, SecurityGroupId: SECURITY_GROUP_ID,
  };
  const refs: Record<string, string> = {};
  for (const [logicalId, p] of Object.entries<any>(parameters)) {
    const suffix = /^\/chronos-training\/dev\/(.+)$/.exec(p.Default ?? '')?.[1];
    if (suffix && values[suffix]) refs[logicalId] = values[suffix];
  }
  return policiesOf(stack, launcher, refs);
}

function markdownTable(table: Row[]): string {
  const lines = table.map((r, i) => {
    const resource = r.resource.replace(`arn:aws:s3:::${BUCKET}`, '{bucket}').replace(`arn:aws:ec2:${REGION}:${ACCOUNT}:`, '')
      .replace(`arn:aws:ssm:${REGION}:${ACCOUNT}:`, '').replace(`arn:aws:iam::${ACCOUNT}:`, '').replace(/role\/FoundationInstanceRole\w*/, '{instance role}');
    const context = Object.entries(r.context ?? {}).filter(([k]) => k !== 'ec2:Region')
      .map(([k, v]) => `${k}=${v.replace(`arn:aws:ec2:${REGION}:${ACCOUNT}:`, '')}`).join('; ');
    return `| ${i + 1} | ${r.request} | \`${r.action}\` | \`${resource}\` | ${context} | ${r.allowed ? '**allowed**' : 'denied'} |`;
  });
  return ['| # | A role with grantLaunch (dev) tries to… | Action | Resource | Context | Result |', '|---|---|---|---|---|---|', ...lines].join('\n');
}

describe('grantLaunch, simulated', () => {
  const { policies, instanceRoleArn } = owned();
  const table = rows(instanceRoleArn);

  test.each(table.map((r, i) => [i + 1, r.request, r.allowed ? 'allowed' : 'denied', r] as const))(
    '%i. a launcher may %s: %s', async (_n, _request, _expected, r) => {
      const result = await simulate(policies, { principal: `arn:aws:iam::${ACCOUNT}:role/Launcher`, action: r.action, resource: r.resource, context: r.context ?? {} }, r.request);
      expect(result.overallResult).toBe(r.allowed ? 'Allowed' : 'ImplicitlyDenied');
      expect(result.result?.ignoredContextKeys ?? []).toEqual([]);
    });

  test('an imported foundation (fromEnvironment) grants the same', async () => {
    const importedPolicies = imported(instanceRoleArn);
    for (const r of table) {
      const result = await simulate(importedPolicies, { principal: `arn:aws:iam::${ACCOUNT}:role/Launcher`, action: r.action, resource: r.resource, context: r.context ?? {} }, r.request);
      expect([r.request, result.overallResult]).toEqual([r.request, r.allowed ? 'Allowed' : 'ImplicitlyDenied']);
    }
  });

  test('docs/IAM.md holds the table', () => {
    const doc = fs.readFileSync(path.join(__dirname, '..', '..', 'docs', 'IAM.md'), 'utf8');
    const md = markdownTable(table);
    if (!doc.includes(md)) throw new Error(`docs/IAM.md does not contain the current grantLaunch table; paste this:\n\n${md}\n`);
  });
});

describe('grantLaunch and the default image\'s public parameter', () => {
  // EC2 User Guide, "Use a Systems Manager parameter instead of an AMI ID": ssm:GetParameters lets a principal retrieve
  // the value of the parameter a resolve:ssm: ImageId names. Public parameter names start with /aws/service/ (names
  // starting with "aws" are reserved), so an account wildcard reaches no parameter of any account.
  test('the grant matches a public parameter\'s ARN, which has no account, and only the DLAMI\'s', () => {
    const { policies } = owned();
    const statements = policies.flatMap(p => p.policy.Statement).filter((st: any) => [st.Action].flat().includes('ssm:GetParameters'));
    const resources: string[] = statements.flatMap((st: any) => [st.Resource].flat());
    const matches = (arn: string) => resources.some(r => new RegExp(`^${r.split('*').map(x => x.replace(/[.?+^$(){}|[\]\\/]/g, '\\$&')).join('.*')}$`).test(arn));
    expect(matches(`arn:aws:ssm:${REGION}::parameter${DLAMI_PARAMETER}`)).toBe(true);
    expect(matches(`arn:aws:ssm:${REGION}::parameter${DLAMI_PARAMETER.replace('x86_64', 'arm64')}`)).toBe(true);
    expect(matches(`arn:aws:ssm:${REGION}::parameter/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64`)).toBe(false);
    expect(matches(`arn:aws:ssm:us-west-2::parameter${DLAMI_PARAMETER}`)).toBe(false);
  });
});

describe('grantLaunch without a launch template', () => {
  test.each([
    ['an owned foundation with launchTemplate: false', (stack: Stack) => new ChronosTrainingFoundation(stack, 'F', { environmentName: 'dev', launchTemplate: false })],
    ['an imported one with launchTemplate: false', (stack: Stack) => ChronosTrainingFoundation.fromEnvironment(stack, 'F', 'dev', { launchTemplate: false })],
  ])('%s throws a clear error', (_name, make) => {
    const stack = new Stack(new App(), 'S', { env: { account: ACCOUNT, region: REGION } });
    const foundation = make(stack);
    const role = new iam.Role(stack, 'Launcher', { assumedBy: new iam.AccountRootPrincipal() });
    expect(() => foundation.grantLaunch(role)).toThrow(/^grantLaunch: the foundation of 'dev' has no launch template \(launchTemplate: false\)/);
  });
});
