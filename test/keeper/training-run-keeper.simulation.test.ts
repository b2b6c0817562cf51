/*
 * The run keeper role's exact powers, as a table of requests evaluated by the IAM policy simulator against every policy
 * the synthesized default stack attaches to the role (and the scheduler role's). The table is in docs/IAM.md.
 * References: Service Authorization Reference, "Actions, resources, and condition keys" for Amazon EC2
 * (ec2:LaunchTemplate, ec2:Vpc, aws:RequestTag; DescribeInstances and DescribeSpotPriceHistory take no resource and
 * no tag condition), EventBridge Scheduler (CreateSchedule on schedule/${GroupName}/${ScheduleName}), Amazon
 * EventBridge (PutEvents: events:source and events:detail-type, ArrayOfString), AWS Price List (GetProducts: no
 * resource); IAM User Guide, "Grant a user permissions to pass a role to an AWS service" (iam:PassedToService).
 */
import * as fs from 'fs';
import * as path from 'path';
import { App, CfnResource } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { ChronosTrainingStack } from '../../src';
import { ACCOUNT, LAUNCH_TEMPLATE_ID, REGION, resolver, SECURITY_GROUP_ID, simulate, SimulationRow as Row, VPC_ID } from '../iam-simulation';

const BUCKET = `chronos-training-dev-${ACCOUNT}-${REGION}`;
const TEMPLATE = `arn:aws:ec2:${REGION}:${ACCOUNT}:launch-template/${LAUNCH_TEMPLATE_ID}`;
const OTHER_TEMPLATE = `arn:aws:ec2:${REGION}:${ACCOUNT}:launch-template/lt-0fffffffffffffff0`;
const object = (key: string) => `arn:aws:s3:::${BUCKET}/${key}`;
const ec2 = (type: string, id: string) => `arn:aws:ec2:${REGION}:${ACCOUNT}:${type}/${id}`;
const fromTemplate = { 'ec2:LaunchTemplate': TEMPLATE };
const VPC = `arn:aws:ec2:${REGION}:${ACCOUNT}:vpc/${VPC_ID}`;
const launchTags = (tags: Record<string, string> = {}) => Object.fromEntries(Object.entries({
  Project: 'Chronos-Training', Environment: 'dev', ManagedBy: 'chronos-training', MaxLifetimeHours: '4.25', ...tags,
}).map(([k, v]) => [`aws:RequestTag/${k}`, v]));
const schedule = (group: string, name: string) => `arn:aws:scheduler:${REGION}:${ACCOUNT}:schedule/${group}/${name}`;
const DEFAULT_BUS = `arn:aws:events:${REGION}:${ACCOUNT}:event-bus/default`;
const endEvent = { 'events:source': 'chronos.training', 'events:detail-type': 'Chronos Training Run Ended' };
/**
 * The default image's public parameter (chronos-training/src/chronos_training/ec2launch.py). Its real ARN has no
 * account, which the simulator cannot parse (no.resource.types): the row uses the test account, as
 * test/foundation/grant-launch.simulation.test.ts does, which checks the account-less form against the statement.
 */
const DLAMI_PARAMETER = '/aws/service/deeplearning/ami/x86_64/oss-nvidia-driver-gpu-pytorch-2.10-amazon-linux-2023/latest/ami-id';
/** The run keeper's handler, whose AWS_ACTIONS tuple lists every IAM action its calls need. */
const KEEPER_PY = path.join(__dirname, '..', '..', 'chronos-training', 'src', 'chronos_training', 'keeper.py');

/** The IAM actions of `AWS_ACTIONS = (...)` in keeper.py (a tuple literal of strings); throws when it is not there. */
function keeperActions(source: string): string[] {
  const tuple = /^AWS_ACTIONS = \(\n([\s\S]*?)^\)$/m.exec(source);
  if (!tuple) throw new Error(`no AWS_ACTIONS = (...) tuple in ${KEEPER_PY}`);
  const body = tuple[1].split('\n').map(line => line.replace(/#.*$/, '')).join('\n');
  const actions = [...body.matchAll(/"([^"]*)"/g)].map(m => m[1]);
  const rest = body.replace(/"[^"]*"/g, '').replace(/[\s,]/g, '');
  if (rest !== '' || actions.length === 0) throw new Error(`AWS_ACTIONS in ${KEEPER_PY} is not a tuple of string literals: ${rest}`);
  return actions;
}

/** The roles' ARNs are filled in from the template (generated names). */
function rows(instanceRoleArn: string, schedulerRoleArn: string): Row[] {
  return [
    // An EC2 state change: which instance, which run.
    { request: 'describe the instance of a state change', action: 'ec2:DescribeInstances', resource: '*', allowed: true },
    { request: 'read a run\'s spec', action: 's3:GetObject', resource: object('dev/runs/r1/spec.json'), allowed: true },
    { request: 'list a run\'s attempts', action: 's3:ListBucket', resource: `arn:aws:s3:::${BUCKET}`, context: { 's3:prefix': 'dev/runs/r1/attempts/' }, allowed: true },
    { request: 'claim the next attempt (conditional write of its record)', action: 's3:PutObject', resource: object('dev/runs/r1/attempts/002.json'), allowed: true },
    { request: 'write the run\'s status', action: 's3:PutObject', resource: object('dev/runs/r1/status.json'), allowed: true },
    { request: 'read the foundation\'s parameters', action: 'ssm:GetParametersByPath', resource: `arn:aws:ssm:${REGION}:${ACCOUNT}:parameter/chronos-training/dev`, allowed: true },
    // The next attempt, from the template only (the statements grantLaunch gives).
    { request: 'launch an instance from the template, with the launcher\'s tags', action: 'ec2:RunInstances', resource: ec2('instance', '*'), context: { ...fromTemplate, ...launchTags() }, allowed: true },
    { request: 'create its root volume, with the launcher\'s tags', action: 'ec2:RunInstances', resource: ec2('volume', '*'), context: { ...fromTemplate, ...launchTags() }, allowed: true },
    { request: 'use a subnet of the foundation\'s VPC', action: 'ec2:RunInstances', resource: ec2('subnet', 'subnet-0aaaaaaaaaaaaaaa1'), context: { ...fromTemplate, 'ec2:Vpc': VPC }, allowed: true },
    { request: 'use the foundation\'s security group', action: 'ec2:RunInstances', resource: ec2('security-group', SECURITY_GROUP_ID), context: fromTemplate, allowed: true },
    { request: 'use the template', action: 'ec2:RunInstances', resource: TEMPLATE, context: fromTemplate, allowed: true },
    { request: 'request a spot instance', action: 'ec2:RunInstances', resource: ec2('spot-instances-request', '*'), allowed: true },
    { request: 'tag the instance at launch', action: 'ec2:CreateTags', resource: ec2('instance', '*'), context: { 'ec2:CreateAction': 'RunInstances' }, allowed: true },
    { request: 'pass the instance role to EC2', action: 'iam:PassRole', resource: instanceRoleArn, context: { 'iam:PassedToService': 'ec2.amazonaws.com' }, allowed: true },
    { request: 'check zone offerings of a type', action: 'ec2:DescribeInstanceTypeOfferings', resource: '*', allowed: true },
    { request: 'read an instance type\'s architecture', action: 'ec2:DescribeInstanceTypes', resource: '*', allowed: true },
    { request: 'read the template\'s image and tags', action: 'ec2:DescribeLaunchTemplateVersions', resource: '*', allowed: true },
    { request: 'pin the default image (its public parameter)', action: 'ssm:GetParameters', resource: `arn:aws:ssm:${REGION}:${ACCOUNT}:parameter${DLAMI_PARAMETER}`, allowed: true },
    { request: 'read the foundation\'s exports (no parameters)', action: 'cloudformation:ListExports', resource: '*', allowed: true },
    // Waiting for capacity: a one-time schedule in its own group.
    { request: 'create a retry schedule in its group', action: 'scheduler:CreateSchedule', resource: schedule('chronos-training-dev', 'r1-002'), allowed: true },
    { request: 'delete a retry schedule of its group', action: 'scheduler:DeleteSchedule', resource: schedule('chronos-training-dev', 'r1-002'), allowed: true },
    { request: 'pass the scheduler role to EventBridge Scheduler', action: 'iam:PassRole', resource: schedulerRoleArn, context: { 'iam:PassedToService': 'scheduler.amazonaws.com' }, allowed: true },
    // The end: the cost estimate and the end event.
    { request: 'read the spot price history', action: 'ec2:DescribeSpotPriceHistory', resource: '*', allowed: true },
    { request: 'read on-demand prices (Price List API)', action: 'pricing:GetProducts', resource: '*', allowed: true },
    { request: 'publish the run\'s end event to the default bus', action: 'events:PutEvents', resource: DEFAULT_BUS, context: endEvent, allowed: true },
    // What it may not do
    { request: 'launch from another launch template', action: 'ec2:RunInstances', resource: ec2('instance', '*'), context: { 'ec2:LaunchTemplate': OTHER_TEMPLATE, ...launchTags() }, allowed: false },
    { request: 'launch without a launch template', action: 'ec2:RunInstances', resource: ec2('instance', '*'), context: launchTags(), allowed: false },
    { request: 'launch an instance tagged for prod', action: 'ec2:RunInstances', resource: ec2('instance', '*'), context: { ...fromTemplate, ...launchTags({ Environment: 'prod' }) }, allowed: false },
    { request: 'use another launch template', action: 'ec2:RunInstances', resource: OTHER_TEMPLATE, context: { 'ec2:LaunchTemplate': OTHER_TEMPLATE }, allowed: false },
    { request: 'write under the checkpoints', action: 's3:PutObject', resource: object('dev/checkpoints/r1/manifests/0000000001.json'), allowed: false },
    { request: 'read a checkpoint', action: 's3:GetObject', resource: object('dev/checkpoints/r1/manifests/0000000001.json'), allowed: false },
    { request: 'overwrite the code', action: 's3:PutObject', resource: object('dev/code/blobs/ab12'), allowed: false },
    { request: 'delete a run\'s documents', action: 's3:DeleteObject', resource: object('dev/runs/r1/spec.json'), allowed: false },
    { request: 'write another environment\'s runs', action: 's3:PutObject', resource: object('prod/runs/r1/status.json'), allowed: false },
    { request: 'list the whole bucket', action: 's3:ListBucket', resource: `arn:aws:s3:::${BUCKET}`, allowed: false },
    { request: 'create a schedule in another group', action: 'scheduler:CreateSchedule', resource: schedule('default', 'r1-002'), allowed: false },
    { request: 'create a schedule in another environment\'s group', action: 'scheduler:CreateSchedule', resource: schedule('chronos-training-prod', 'r1-002'), allowed: false },
    { request: 'pass another role to EventBridge Scheduler', action: 'iam:PassRole', resource: `arn:aws:iam::${ACCOUNT}:role/Admin`, context: { 'iam:PassedToService': 'scheduler.amazonaws.com' }, allowed: false },
    { request: 'pass the scheduler role to Lambda', action: 'iam:PassRole', resource: schedulerRoleArn, context: { 'iam:PassedToService': 'lambda.amazonaws.com' }, allowed: false },
    { request: 'pass the instance role to Lambda', action: 'iam:PassRole', resource: instanceRoleArn, context: { 'iam:PassedToService': 'lambda.amazonaws.com' }, allowed: false },
    { request: 'publish an event of another source', action: 'events:PutEvents', resource: DEFAULT_BUS, context: { ...endEvent, 'events:source': 'aws.ec2' }, allowed: false },
    { request: 'publish an event of another detail-type', action: 'events:PutEvents', resource: DEFAULT_BUS, context: { ...endEvent, 'events:detail-type': 'Anything' }, allowed: false },
    { request: 'publish to another bus', action: 'events:PutEvents', resource: `arn:aws:events:${REGION}:${ACCOUNT}:event-bus/other`, context: endEvent, allowed: false },
    { request: 'terminate an instance', action: 'ec2:TerminateInstances', resource: ec2('instance', 'i-0aaaaaaaaaaaaaaa1'), context: { 'ec2:ResourceTag/Project': 'Chronos-Training', 'ec2:ResourceTag/Environment': 'dev' }, allowed: false },
    { request: 'tag an existing instance', action: 'ec2:CreateTags', resource: ec2('instance', 'i-0aaaaaaaaaaaaaaa1'), context: { 'ec2:CreateAction': 'CreateTags' }, allowed: false },
    { request: 'read another environment\'s parameters', action: 'ssm:GetParametersByPath', resource: `arn:aws:ssm:${REGION}:${ACCOUNT}:parameter/chronos-training/prod`, allowed: false },
  ];
}

/** Every policy the template attaches to a role (inline, and the IAM::Policy resources naming it), resolved. */
function policiesOfRole(resources: Record<string, any>, roleId: string) {
  const resolve = resolver(resources);
  const role = resources[roleId];
  expect(role.Properties.ManagedPolicyArns).toBeUndefined();
  return [
    ...(role.Properties.Policies ?? []).map((p: any) => ({ name: p.PolicyName, policy: resolve(p.PolicyDocument) })),
    ...Object.values<any>(resources).filter(r => r.Type === 'AWS::IAM::Policy' && r.Properties.Roles.some((x: any) => x.Ref === roleId))
      .map(p => ({ name: p.Properties.PolicyName, policy: resolve(p.Properties.PolicyDocument) })),
  ];
}

function synth() {
  const stack = new ChronosTrainingStack(new App(), 'ChronosTraining-dev-Stack', { environmentName: 'dev', env: { account: ACCOUNT, region: REGION } });
  const resources = Template.fromStack(stack).toJSON().Resources;
  const keeper = stack.foundation.runKeeper!;
  const id = (c: any) => stack.getLogicalId(c.node.defaultChild as CfnResource);
  const arn = (c: any) => resolver(resources)({ 'Fn::GetAtt': [id(c), 'Arn'] });
  return {
    resources,
    keeperPolicies: policiesOfRole(resources, id(keeper.role)),
    schedulerPolicies: policiesOfRole(resources, id(keeper.schedulerRole)),
    instanceRoleArn: arn(stack.foundation.role),
    schedulerRoleArn: arn(keeper.schedulerRole),
    functionArn: arn(keeper.function),
  };
}

function markdownTable(table: Row[]): string {
  const lines = table.map((r, i) => {
    const resource = r.resource.replace(`arn:aws:s3:::${BUCKET}`, '{bucket}').replace(`arn:aws:ec2:${REGION}:${ACCOUNT}:`, '')
      .replace(`arn:aws:ssm:${REGION}:${ACCOUNT}:`, '').replace(`arn:aws:iam::${ACCOUNT}:`, '')
      .replace(`arn:aws:scheduler:${REGION}:${ACCOUNT}:`, '').replace(`arn:aws:events:${REGION}:${ACCOUNT}:`, '')
      .replace(/role\/FoundationInstanceRole\w*/, '{instance role}').replace(/role\/FoundationKeeperSchedulerRole\w*/, '{scheduler role}');
    const context = Object.entries(r.context ?? {}).map(([k, v]) => `${k}=${v.replace(`arn:aws:ec2:${REGION}:${ACCOUNT}:`, '')}`).join('; ');
    return `| ${i + 1} | ${r.request} | \`${r.action}\` | \`${resource}\` | ${context} | ${r.allowed ? '**allowed**' : 'denied'} |`;
  });
  return ['| # | The run keeper (dev) tries to… | Action | Resource | Context | Result |', '|---|---|---|---|---|---|', ...lines].join('\n');
}

describe('the run keeper\'s role, simulated', () => {
  const synthesized = synth();
  const table = rows(synthesized.instanceRoleArn, synthesized.schedulerRoleArn);

  test.each(table.map((r, i) => [i + 1, r.request, r.allowed ? 'allowed' : 'denied', r] as const))(
    '%i. the keeper may %s: %s', async (_n, _request, _expected, r) => {
      const result = await simulate(synthesized.keeperPolicies,
        { principal: `arn:aws:iam::${ACCOUNT}:role/Keeper`, action: r.action, resource: r.resource, context: r.context ?? {} }, r.request);
      expect(result.overallResult).toBe(r.allowed ? 'Allowed' : 'ImplicitlyDenied');
    });

  test('a PutEvents request without a source or detail-type is denied (Null: a missing key matches no ForAllValues)', async () => {
    const result = await simulate(synthesized.keeperPolicies,
      { principal: `arn:aws:iam::${ACCOUNT}:role/Keeper`, action: 'events:PutEvents', resource: DEFAULT_BUS, context: {} }, 'no keys');
    expect(result.overallResult).toBe('ImplicitlyDenied');
  });

  test('the scheduler role may invoke the keeper only', async () => {
    const invoke = (resource: string) => simulate(synthesized.schedulerPolicies,
      { principal: `arn:aws:iam::${ACCOUNT}:role/Scheduler`, action: 'lambda:InvokeFunction', resource, context: {} }, resource);
    expect((await invoke(synthesized.functionArn)).overallResult).toBe('Allowed');
    expect((await invoke(`arn:aws:lambda:${REGION}:${ACCOUNT}:function:Other`)).overallResult).toBe('ImplicitlyDenied');
  });

  // Every action of the handler's calls (keeper.AWS_ACTIONS, checked against its calls on moto by
  // chronos-training/tests/test_keeper_actions.py) is allowed for each request of the table that makes it, with the
  // resource and context the handler's request has; an action with no request in the table fails (add one).
  const actions = keeperActions(fs.readFileSync(KEEPER_PY, 'utf8'));
  test.each(actions)('the role allows %s, which the handler needs', async action => {
    const requests = table.filter(r => r.allowed && r.action === action);
    expect({ action, requestsInTheTable: requests.length > 0 }).toEqual({ action, requestsInTheTable: true });
    for (const r of requests) {
      const result = await simulate(synthesized.keeperPolicies,
        { principal: `arn:aws:iam::${ACCOUNT}:role/Keeper`, action: r.action, resource: r.resource, context: r.context ?? {} }, r.request);
      expect({ request: r.request, result: result.overallResult }).toEqual({ request: r.request, result: 'Allowed' });
    }
  });

  test('AWS_ACTIONS is read from keeper.py, and a file without it is refused', () => {
    expect(actions).toEqual(expect.arrayContaining(['ec2:RunInstances', 's3:ListBucket', 'events:PutEvents']));
    expect(() => keeperActions('X = ("s3:GetObject",)\n')).toThrow(/no AWS_ACTIONS/);
    expect(() => keeperActions('AWS_ACTIONS = (\n    "s3:GetObject",\n    OTHER,\n)\n')).toThrow(/not a tuple of string literals/);
  });

  test('docs/IAM.md holds the table', () => {
    const doc = fs.readFileSync(path.join(__dirname, '..', '..', 'docs', 'IAM.md'), 'utf8');
    const md = markdownTable(table);
    if (!doc.includes(md)) throw new Error(`docs/IAM.md does not contain the current run keeper table; paste this:\n\n${md}\n`);
  });
});
