/*
 * The run reaper role's exact powers: requests evaluated by an IAM policy
 * simulator against every policy the synthesized template attaches to the role.
 */
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { TrainingRunReaper } from '../../src';
import { ACCOUNT, instanceArn, REGION, resolver, simulate } from '../iam-simulation';

const devTags = { Project: 'Chronos-Training', Environment: 'dev' };
const LOG_GROUP = `arn:aws:logs:${REGION}:${ACCOUNT}:log-group:ReaperLogGroup`;

interface Scenario {
  readonly request: string;
  readonly action: string;
  readonly resource: string;
  /** Tags of the target instance. */
  readonly tags?: Record<string, string>;
  readonly allowed: boolean;
}

/** Requests of the dev reaper function, signed with its role's credentials. */
const SCENARIOS: Scenario[] = [
  { request: 'describe instances', action: 'ec2:DescribeInstances', resource: '*', allowed: true },
  { request: 'terminate an expired dev training instance', action: 'ec2:TerminateInstances', resource: instanceArn('i-0aaaaaaaaaaaaaaa1'), tags: devTags, allowed: true },
  { request: 'create a log stream in its log group', action: 'logs:CreateLogStream', resource: `${LOG_GROUP}:log-stream:2026/11/27/x`, allowed: true },
  { request: 'write log events to its log group', action: 'logs:PutLogEvents', resource: `${LOG_GROUP}:log-stream:2026/11/27/x`, allowed: true },
  { request: 'send a failed invocation to its dead-letter queue', action: 'sqs:SendMessage', resource: `arn:aws:sqs:${REGION}:${ACCOUNT}:ReaperDeadLetterQueue`, allowed: true },
  {
    request: 'terminate a prod instance',
    action: 'ec2:TerminateInstances',
    resource: instanceArn('i-0ccccccccccccccc3'),
    tags: { Project: 'Chronos-Training', Environment: 'prod' },
    allowed: false,
  },
  { request: 'terminate a dev instance without the Project tag', action: 'ec2:TerminateInstances', resource: instanceArn('i-0ddddddddddddddd4'), tags: { Environment: 'dev' }, allowed: false },
  {
    request: "terminate another project's instance",
    action: 'ec2:TerminateInstances',
    resource: instanceArn('i-0eeeeeeeeeeeeeee5'),
    tags: { Project: 'Other', Environment: 'dev' },
    allowed: false,
  },
  { request: 'terminate a dev instance in another region', action: 'ec2:TerminateInstances', resource: instanceArn('i-0fffffffffffffff6', 'us-west-2'), tags: devTags, allowed: false },
  {
    request: 'terminate a dev AWS Batch instance (ManagedBy=chronos-batch)',
    action: 'ec2:TerminateInstances',
    resource: instanceArn('i-0bbbbbbbbbbbbbbb7'),
    tags: { ...devTags, ManagedBy: 'chronos-batch' },
    allowed: false,
  },
  {
    request: 'terminate an expired dev instance of the launch template',
    action: 'ec2:TerminateInstances',
    resource: instanceArn('i-0bbbbbbbbbbbbbbb8'),
    tags: { ...devTags, ManagedBy: 'chronos-launch-template' },
    allowed: true,
  },
  { request: 'stop a dev instance', action: 'ec2:StopInstances', resource: instanceArn('i-0aaaaaaaaaaaaaaa1'), tags: devTags, allowed: false },
  { request: 'tag an instance (to bring it into scope)', action: 'ec2:CreateTags', resource: instanceArn('i-0eeeeeeeeeeeeeee5'), tags: { Project: 'Other' }, allowed: false },
  { request: 'launch an instance', action: 'ec2:RunInstances', resource: instanceArn('*'), allowed: false },
  { request: 'pass a role', action: 'iam:PassRole', resource: `arn:aws:iam::${ACCOUNT}:role/Admin`, allowed: false },
  { request: 'read training data', action: 's3:GetObject', resource: `arn:aws:s3:::chronos-training-dev-${ACCOUNT}-${REGION}/dev/runs/r1/model.pt`, allowed: false },
  { request: 'write to another log group', action: 'logs:PutLogEvents', resource: `arn:aws:logs:${REGION}:${ACCOUNT}:log-group:Other:log-stream:x`, allowed: false },
  { request: 'delete its log group', action: 'logs:DeleteLogGroup', resource: `${LOG_GROUP}:*`, allowed: false },
  { request: 'send to another queue', action: 'sqs:SendMessage', resource: `arn:aws:sqs:${REGION}:${ACCOUNT}:Other`, allowed: false },
];

/** Every policy the template attaches to the reaper's role (inline, and the IAM::Policy CDK adds for the queue), resolved. */
function reaperPolicies(): Array<{ name: string; policy: any }> {
  const stack = new Stack(new App(), 'S', { env: { account: ACCOUNT, region: REGION } });
  new TrainingRunReaper(stack, 'Reaper', { environmentName: 'dev', maxRunLifetime: Duration.hours(6) });
  const resources = Template.fromStack(stack).toJSON().Resources;
  const resolve = resolver(resources);
  const [roleId, role] = Object.entries<any>(resources).find(([, r]) => r.Type === 'AWS::IAM::Role')!;
  const attached = Object.values<any>(resources).filter(r => r.Type === 'AWS::IAM::Policy' && r.Properties.Roles.some((x: any) => x.Ref === roleId));
  expect(role.Properties.ManagedPolicyArns).toBeUndefined();
  return [
    ...role.Properties.Policies.map((p: any) => ({ name: p.PolicyName, policy: resolve(p.PolicyDocument) })),
    ...attached.map(p => ({ name: p.Properties.PolicyName, policy: resolve(p.Properties.PolicyDocument) })),
  ];
}

function contextOf(s: Scenario): Record<string, string> {
  const context: Record<string, string> = {};
  const target = /^arn:aws:ec2:([^:]+):\d+:instance\/(i-[0-9a-f]+)$/.exec(s.resource);
  if (target) {
    context['ec2:Region'] = target[1];
    context['ec2:InstanceID'] = target[2];
  }
  for (const [key, value] of Object.entries(s.tags ?? {})) context[`ec2:ResourceTag/${key}`] = value;
  return context;
}

describe('TrainingRunReaper role, simulated', () => {
  const policies = reaperPolicies();

  test('evaluates the inline policies and the queue policy CDK adds', () => {
    expect(policies.map(p => p.name)).toEqual(['Logs', 'TerminateExpiredInstances', expect.stringMatching(/^ReaperRoleDefaultPolicy/)]);
  });

  test('the table has allowed and denied requests', () => {
    expect(SCENARIOS.filter(s => s.allowed).length).toBeGreaterThanOrEqual(5);
    expect(SCENARIOS.filter(s => !s.allowed).length).toBeGreaterThanOrEqual(10);
  });

  test.each(SCENARIOS.map((s, i) => [i + 1, s.request, s.allowed ? 'allowed' : 'denied', s] as const))(
    '%i. the reaper may %s: %s', async (_n, request, _expected, s) => {
      const result = await simulate(policies, {
        principal: `arn:aws:iam::${ACCOUNT}:role/S-ReaperRole`, action: s.action, resource: s.resource, context: contextOf(s),
      }, request);
      expect(result.overallResult).toBe(s.allowed ? 'Allowed' : 'ImplicitlyDenied');
      expect(result.result?.ignoredContextKeys ?? []).toEqual([]);
    });
});
