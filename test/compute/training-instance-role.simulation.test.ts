/*
 * The instance role's exact powers, as a table of requests evaluated by an IAM
 * policy simulator against the policies synthesized into the template (resolved
 * from the template, not rebuilt by hand). The same tables are in docs/IAM.md.
 */
import * as fs from 'fs';
import * as path from 'path';
import { App, CfnResource } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { ChronosTrainingStack, TrainingInstanceRoleOptions } from '../../src';
import { ACCOUNT, instanceArn as instance, REGION, resolver, simulate as simulateRequest } from '../iam-simulation';

const BUCKET = `chronos-training-dev-${ACCOUNT}-${REGION}`;
const OTHER_BUCKET = `chronos-training-prod-${ACCOUNT}-${REGION}`;
const SELF = 'i-0aaaaaaaaaaaaaaa1';

const object = (key: string, bucket = BUCKET) => `arn:aws:s3:::${bucket}/${key}`;
const devTags = { Project: 'Chronos-Training', Environment: 'dev' };

interface Scenario {
  /** What the request is, in words. */
  readonly request: string;
  readonly action: string;
  readonly resource: string;
  /** `s3:prefix` of a ListBucket request. */
  readonly prefix?: string;
  /** Tags of the target instance. */
  readonly tags?: Record<string, string>;
  /** Instance whose role credentials sign the request (ec2:SourceInstanceARN); none for other callers. */
  readonly from?: string | null;
  /** Other context keys of the request (kms:ViaService, kms:EncryptionContext:...). */
  readonly context?: Record<string, string>;
  readonly allowed: boolean;
}

/** Requests of a dev training instance (i-…1), signed with its own role credentials unless `from` says otherwise. */
const SCENARIOS: Scenario[] = [
  // What a training run needs.
  { request: 'read a cached dataset', action: 's3:GetObject', resource: object('cached-datasets/2026/11/prices.parquet'), allowed: true },
  { request: 'list cached datasets', action: 's3:ListBucket', resource: `arn:aws:s3:::${BUCKET}`, prefix: 'cached-datasets/2026/', allowed: true },
  { request: 'read the pre-built Python environment', action: 's3:GetObject', resource: object('runtime/python-env/venv.tar.gz'), allowed: true },
  { request: 'read a runtime script', action: 's3:GetObject', resource: object('runtime/scripts/train.sh'), allowed: true },
  { request: 'list runtime scripts', action: 's3:ListBucket', resource: `arn:aws:s3:::${BUCKET}`, prefix: 'runtime/scripts/', allowed: true },
  { request: 'write a checkpoint under dev/', action: 's3:PutObject', resource: object('dev/runs/r1/checkpoint.pt'), allowed: true },
  { request: 'read its own outputs under dev/', action: 's3:GetObject', resource: object('dev/runs/r1/metrics.json'), allowed: true },
  { request: 'delete a temporary file under dev/', action: 's3:DeleteObject', resource: object('dev/runs/r1/tmp.bin'), allowed: true },
  { request: 'abort its own multipart upload under dev/', action: 's3:AbortMultipartUpload', resource: object('dev/runs/r1/model.pt'), allowed: true },
  { request: 'list dev/ outputs', action: 's3:ListBucket', resource: `arn:aws:s3:::${BUCKET}`, prefix: 'dev/runs/', allowed: true },
  { request: 'describe instances', action: 'ec2:DescribeInstances', resource: '*', allowed: true },
  // What the run agent does (docs/RUNS.md, "The bucket layout"), run r1, attempt 001.
  { request: 'the run agent: read the run spec', action: 's3:GetObject', resource: object('dev/runs/r1/spec.json'), allowed: true },
  { request: 'the run agent: read a code blob', action: 's3:GetObject', resource: object(`dev/code/blobs/${'ab'.repeat(32)}`), allowed: true },
  { request: 'the run agent: write the run status', action: 's3:PutObject', resource: object('dev/runs/r1/status.json'), allowed: true },
  { request: 'the run agent: write a log chunk', action: 's3:PutObject', resource: object('dev/logs/r1/001/stdout/0000000001.log'), allowed: true },
  { request: 'the run agent: upload a checkpoint file', action: 's3:PutObject', resource: object('dev/checkpoints/r1/data/0000000001/last.pt'), allowed: true },
  { request: 'the run agent: list checkpoint manifests', action: 's3:ListBucket', resource: `arn:aws:s3:::${BUCKET}`, prefix: 'dev/checkpoints/r1/manifests/', allowed: true },
  { request: 'the run agent: read a runtime script', action: 's3:GetObject', resource: object('runtime/scripts/x'), allowed: true },
  { request: 'terminate itself', action: 'ec2:TerminateInstances', resource: instance(SELF), tags: devTags, allowed: true },
  // Other environments.
  { request: 'read prod outputs', action: 's3:GetObject', resource: object('prod/runs/r1/model.pt'), allowed: false },
  { request: 'write into prod/', action: 's3:PutObject', resource: object('prod/runs/r1/model.pt'), allowed: false },
  { request: 'delete prod outputs', action: 's3:DeleteObject', resource: object('prod/runs/r1/model.pt'), allowed: false },
  { request: 'list prod/', action: 's3:ListBucket', resource: `arn:aws:s3:::${BUCKET}`, prefix: 'prod/', allowed: false },
  { request: 'list the whole bucket', action: 's3:ListBucket', resource: `arn:aws:s3:::${BUCKET}`, allowed: false },
  { request: "the run agent: read another environment's run spec", action: 's3:GetObject', resource: object('prod/runs/r1/spec.json'), allowed: false },
  { request: "the run agent: write another environment's run status", action: 's3:PutObject', resource: object('prod/runs/r1/status.json'), allowed: false },
  { request: "the run agent: list another environment's checkpoints", action: 's3:ListBucket', resource: `arn:aws:s3:::${BUCKET}`, prefix: 'prod/checkpoints/', allowed: false },
  { request: "read the prod bucket's datasets", action: 's3:GetObject', resource: object('cached-datasets/x.parquet', OTHER_BUCKET), allowed: false },
  {
    request: 'terminate a prod instance',
    action: 'ec2:TerminateInstances',
    resource: instance('i-0ccccccccccccccc3'),
    tags: { Project: 'Chronos-Training', Environment: 'prod' },
    allowed: false,
  },
  // Tampering with shared data.
  { request: 'overwrite a cached dataset', action: 's3:PutObject', resource: object('cached-datasets/2026/11/prices.parquet'), allowed: false },
  { request: 'delete a cached dataset', action: 's3:DeleteObject', resource: object('cached-datasets/2026/11/prices.parquet'), allowed: false },
  { request: 'replace a runtime script', action: 's3:PutObject', resource: object('runtime/scripts/train.sh'), allowed: false },
  { request: 'the run agent: write a runtime script', action: 's3:PutObject', resource: object('runtime/scripts/x'), allowed: false },
  { request: 'read runtime/ outside python-env/ and scripts/', action: 's3:GetObject', resource: object('runtime/secrets/token'), allowed: false },
  // Other instances.
  { request: 'terminate another dev instance', action: 'ec2:TerminateInstances', resource: instance('i-0bbbbbbbbbbbbbbb2'), tags: devTags, allowed: false },
  {
    request: 'terminate itself without the Environment tag',
    action: 'ec2:TerminateInstances',
    resource: instance(SELF),
    tags: { Project: 'Chronos-Training' },
    allowed: false,
  },
  {
    request: "terminate another project's instance",
    action: 'ec2:TerminateInstances',
    resource: instance('i-0ddddddddddddddd4'),
    tags: { Project: 'Other', Environment: 'dev' },
    allowed: false,
  },
  {
    request: 'terminate a dev instance in another region',
    action: 'ec2:TerminateInstances',
    resource: instance('i-0eeeeeeeeeeeeeee5', 'us-west-2'),
    tags: devTags,
    allowed: false,
  },
  {
    request: 'terminate an instance with the role used off-instance',
    action: 'ec2:TerminateInstances',
    resource: instance(SELF),
    tags: devTags,
    from: null,
    allowed: false,
  },
  // Privilege escalation.
  { request: 'tag itself (to get around the tag conditions)', action: 'ec2:CreateTags', resource: instance(SELF), tags: devTags, allowed: false },
  { request: 'launch an instance', action: 'ec2:RunInstances', resource: instance('*'), allowed: false },
  { request: 'pass a role', action: 'iam:PassRole', resource: `arn:aws:iam::${ACCOUNT}:role/Admin`, allowed: false },
  { request: 'change the bucket policy', action: 's3:PutBucketPolicy', resource: `arn:aws:s3:::${BUCKET}`, allowed: false },
  { request: 'make an object public with an ACL', action: 's3:PutObjectAcl', resource: object('dev/runs/r1/model.pt'), allowed: false },
  // A Session Manager shell, which needs `sessionManager: true` (see SESSION_MANAGER_SCENARIOS).
  ...sessionManagerAgent(false),
  // Multipart checkpoints and pruning (docs/RUNS.md, "Checkpoints"): UploadPart and CompleteMultipartUpload are
  // authorized as s3:PutObject; DeleteObjects as s3:DeleteObject on each key (S3 API Reference, DeleteObjects).
  { request: 'the run agent: abort a checkpoint multipart upload', action: 's3:AbortMultipartUpload', resource: object('dev/checkpoints/r1/data/0000000002/model.pt'), allowed: true },
  { request: 'the run agent: prune an old checkpoint object', action: 's3:DeleteObject', resource: object('dev/checkpoints/r1/data/0000000001/model.pt'), allowed: true },
  { request: 'the run agent: list checkpoint data', action: 's3:ListBucket', resource: `arn:aws:s3:::${BUCKET}`, prefix: 'dev/checkpoints/r1/data/', allowed: true },
  { request: "prune another environment's checkpoints", action: 's3:DeleteObject', resource: object('prod/checkpoints/r1/data/0000000001/model.pt'), allowed: false },
];

/** The SSM Agent's five requests for a Session Manager shell on the instance. */
function sessionManagerAgent(allowed: boolean): Scenario[] {
  return [
    { request: 'register with Systems Manager (agent heartbeat)', action: 'ssm:UpdateInstanceInformation', resource: instance(SELF), allowed },
    ...['CreateControlChannel', 'CreateDataChannel', 'OpenControlChannel', 'OpenDataChannel'].map(channel => ({
      request: `${channel.replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase()} for a session`,
      action: `ssmmessages:${channel}`,
      resource: '*',
      allowed,
    })),
  ];
}

/**
 * With `sessionManager: true`, the agent's five requests are allowed, and nothing else of Systems Manager:
 * no Run Command, no parameters, no starting sessions to other instances.
 */
const SESSION_MANAGER_SCENARIOS: Scenario[] = [
  ...sessionManagerAgent(true),
  { request: 'run a command on another instance', action: 'ssm:SendCommand', resource: instance('i-0bbbbbbbbbbbbbbb2'), allowed: false },
  { request: 'start a session to another instance', action: 'ssm:StartSession', resource: instance('i-0bbbbbbbbbbbbbbb2'), allowed: false },
  { request: 'read a parameter', action: 'ssm:GetParameter', resource: `arn:aws:ssm:${REGION}:${ACCOUNT}:parameter/prod/db-password`, allowed: false },
];

const parameter = (name: string, region = REGION) => `arn:aws:ssm:${region}:${ACCOUNT}:parameter/${name}`;
const AWS_SSM_KEY = `arn:aws:kms:${REGION}:${ACCOUNT}:key/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0`;
/*
 * Parameter Store decrypts a SecureString parameter as SSM (kms:ViaService) with the encryption context PARAMETER_ARN.
 * The simulator knows kms:EncryptionContext:${EncryptionContextKey} but matches a variable key only after a '/'
 * (iam-simulate's listHasVariableKeyMatch), so it would ignore kms:EncryptionContext:PARAMETER_ARN: the kms:Decrypt
 * rows are evaluated without that condition (kms:ViaService and the key), and the test 'narrows the decrypt to this
 * environment's secrets' checks the condition in the template.
 */
/*
 * KMS needs the key policy to allow a request too. The kms:Decrypt rows use a key whose policy delegates to IAM (the
 * default key policy of a customer managed key: AWS KMS Developer Guide, "Default key policy"), as a `secretsKey` has,
 * so that the role's policy decides. The AWS managed key aws/ssm's own policy lets every principal of the account use
 * it through SSM (AWS Systems Manager User Guide, "Restricting decryption of SecureString parameter values"): with
 * it, what keeps another environment's secrets from the role is ssm:GetParameter's scope (rows 3 to 6).
 */
const KEY_POLICY_THAT_DELEGATES_TO_IAM = {
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` }, Action: 'kms:*', Resource: '*' }],
};
const SSM_VIA = { 'kms:ViaService': `ssm.${REGION}.amazonaws.com` };
const ENCRYPTION_CONTEXT = 'kms:EncryptionContext:PARAMETER_ARN';

/**
 * The run secrets (docs/RUNS.md, "Secrets"): the agent reads `/chronos-training/dev/secrets/*` with decryption, and
 * nothing else of Parameter Store. The key is the AWS managed key aws/ssm (any key ID of the account and region),
 * through SSM and for those parameters only.
 */
const SECRETS_SCENARIOS: Scenario[] = [
  { request: 'the run agent: read a run secret', action: 'ssm:GetParameter', resource: parameter('chronos-training/dev/secrets/wandb'), allowed: true },
  { request: 'the run agent: decrypt a run secret through SSM', action: 'kms:Decrypt', resource: AWS_SSM_KEY, context: SSM_VIA, allowed: true },
  { request: "read another environment's secret", action: 'ssm:GetParameter', resource: parameter('chronos-training/prod/secrets/wandb'), allowed: false },
  { request: 'read a parameter of another path', action: 'ssm:GetParameter', resource: parameter('prod/db-password'), allowed: false },
  { request: "read the foundation's parameters (the launcher's)", action: 'ssm:GetParameter', resource: parameter('chronos-training/dev/S3BucketName'), allowed: false },
  { request: 'read a dev secret in another region', action: 'ssm:GetParameter', resource: parameter('chronos-training/dev/secrets/wandb', 'us-west-2'), allowed: false },
  { request: 'decrypt with the key outside SSM (kms:Decrypt called directly)', action: 'kms:Decrypt', resource: AWS_SSM_KEY, allowed: false },
  { request: 'decrypt with the key through another service (S3)', action: 'kms:Decrypt', resource: AWS_SSM_KEY, context: { 'kms:ViaService': `s3.${REGION}.amazonaws.com` }, allowed: false },
  { request: 'store or replace a secret', action: 'ssm:PutParameter', resource: parameter('chronos-training/dev/secrets/wandb'), allowed: false },
  { request: 'pull a container image from ECR (no containerRepositories)', action: 'ecr:BatchGetImage', resource: `arn:aws:ecr:${REGION}:${ACCOUNT}:repository/train`, allowed: false },
];

/** A scenario of the table, by its request (fails if the table no longer has it). */
function scenarioNamed(request: string): Scenario {
  const found = SCENARIOS.find(s => s.request === request);
  if (!found) throw new Error(`no scenario '${request}' in the table`);
  return found;
}

/**
 * With `terminateSelfOnly: false`, a supervisor may terminate any instance of its project and environment;
 * instances of another environment, project or region stay out of reach.
 */
const SUPERVISOR_SCENARIOS: Scenario[] = [
  { ...scenarioNamed('terminate another dev instance'), allowed: true },
  scenarioNamed('terminate a prod instance'),
  scenarioNamed("terminate another project's instance"),
  scenarioNamed('terminate a dev instance in another region'),
  {
    request: "terminate a dev instance of a Batch compute environment (AWS Batch's to scale in)",
    action: 'ec2:TerminateInstances',
    resource: instance('i-0ddddddddddddddd4'),
    tags: { ...devTags, ManagedBy: 'chronos-batch' },
    allowed: false,
  },
];

/**
 * Requests of other principals given access with the prefix-scoped grants: a data pipeline role with
 * `grantReadShared` and `grantWriteShared`, and an evaluation job's role with `grantReadWriteEnvironment` (dev).
 */
const GRANTEE_SCENARIOS: Array<Scenario & { readonly grantee: 'pipeline' | 'evaluation' }> = [
  { grantee: 'pipeline', request: 'upload a cached dataset', action: 's3:PutObject', resource: object('cached-datasets/2026/11/prices.parquet'), allowed: true },
  { grantee: 'pipeline', request: 'upload a runtime script', action: 's3:PutObject', resource: object('runtime/scripts/train.sh'), allowed: true },
  { grantee: 'pipeline', request: 'replace the Python environment', action: 's3:DeleteObject', resource: object('runtime/python-env/venv.tar.gz'), allowed: true },
  { grantee: 'pipeline', request: 'list cached datasets (aws s3 sync)', action: 's3:ListBucket', resource: `arn:aws:s3:::${BUCKET}`, prefix: 'cached-datasets/', allowed: true },
  { grantee: 'pipeline', request: 'read dev outputs', action: 's3:GetObject', resource: object('dev/runs/r1/model.pt'), allowed: false },
  { grantee: 'pipeline', request: 'write into dev/', action: 's3:PutObject', resource: object('dev/runs/r1/model.pt'), allowed: false },
  { grantee: 'pipeline', request: 'write runtime/ outside python-env/ and scripts/', action: 's3:PutObject', resource: object('runtime/secrets/token'), allowed: false },
  { grantee: 'pipeline', request: 'list the whole bucket', action: 's3:ListBucket', resource: `arn:aws:s3:::${BUCKET}`, allowed: false },
  { grantee: 'pipeline', request: 'change the bucket policy', action: 's3:PutBucketPolicy', resource: `arn:aws:s3:::${BUCKET}`, allowed: false },
  { grantee: 'evaluation', request: 'read a dev checkpoint', action: 's3:GetObject', resource: object('dev/runs/r1/checkpoint.pt'), allowed: true },
  { grantee: 'evaluation', request: 'write an evaluation report under dev/', action: 's3:PutObject', resource: object('dev/evals/r1.json'), allowed: true },
  { grantee: 'evaluation', request: 'list dev/ outputs', action: 's3:ListBucket', resource: `arn:aws:s3:::${BUCKET}`, prefix: 'dev/runs/', allowed: true },
  { grantee: 'evaluation', request: 'read prod outputs', action: 's3:GetObject', resource: object('prod/runs/r1/model.pt'), allowed: false },
  { grantee: 'evaluation', request: 'overwrite a cached dataset', action: 's3:PutObject', resource: object('cached-datasets/2026/11/prices.parquet'), allowed: false },
  { grantee: 'evaluation', request: 'read a cached dataset', action: 's3:GetObject', resource: object('cached-datasets/2026/11/prices.parquet'), allowed: false },
];

type Policies = Array<{ name: string; policy: any }>;

/**
 * From a synthesized dev stack with every intrinsic function resolved: the instance role's inline
 * policies, and the identity policies of a pipeline and an evaluation role given the prefix-scoped grants.
 */
function synthesizedPolicies(options: TrainingInstanceRoleOptions = {}): { instance: Policies; pipeline: Policies; evaluation: Policies } {
  const stack = new ChronosTrainingStack(new App(), 'ChronosTraining-dev-Stack', {
    environmentName: 'dev', env: { account: ACCOUNT, region: REGION }, instanceRoleProps: options,
  });
  const pipeline = new iam.Role(stack, 'Pipeline', { assumedBy: new iam.AccountRootPrincipal() });
  stack.foundation.grantReadShared(pipeline);
  stack.foundation.grantWriteShared(pipeline);
  const evaluation = new iam.Role(stack, 'Evaluation', { assumedBy: new iam.AccountRootPrincipal() });
  stack.foundation.grantReadWriteEnvironment(evaluation);
  const template = Template.fromStack(stack).toJSON();
  const resources = template.Resources;
  const resolve = resolver(resources);
  const instanceRole = resources[stack.getLogicalId(stack.foundation.role.node.defaultChild as CfnResource)];
  const attachedTo = (role: iam.Role): Policies => Object.values(resources)
    .filter((r: any) => r.Type === 'AWS::IAM::Policy' && JSON.stringify(r.Properties.Roles) === JSON.stringify([{ Ref: stack.getLogicalId(role.node.defaultChild as CfnResource) }]))
    .map((r: any) => ({ name: r.Properties.PolicyName, policy: resolve(r.Properties.PolicyDocument) }));
  return {
    instance: instanceRole.Properties.Policies.map((p: any) => ({ name: p.PolicyName, policy: resolve(p.PolicyDocument) })),
    pipeline: attachedTo(pipeline),
    evaluation: attachedTo(evaluation),
  };
}

/** The request context AWS would set: source instance, target instance ID, region and tags, list prefix. */
function contextOf(s: Scenario): Record<string, string> {
  const context: Record<string, string> = {};
  const from = s.from === undefined ? instance(SELF) : s.from;
  if (from && s.action.startsWith('ec2:')) context['ec2:SourceInstanceARN'] = from;
  const target = /^arn:aws:ec2:([^:]+):\d+:instance\/(i-[0-9a-f]+)$/.exec(s.resource);
  if (target && s.action.startsWith('ec2:')) {
    context['ec2:Region'] = target[1];
    context['ec2:InstanceID'] = target[2];
  }
  for (const [key, value] of Object.entries(s.tags ?? {})) context[`ec2:ResourceTag/${key}`] = value;
  Object.assign(context, s.context ?? {});
  if (s.prefix !== undefined) context['s3:prefix'] = s.prefix;
  return context;
}

async function simulate(policies: Policies, s: Scenario) {
  return simulateRequest(policies, {
    principal: `arn:aws:iam::${ACCOUNT}:role/ChronosTraining-dev-Stack-FoundationInstanceRole`,
    action: s.action,
    resource: s.resource,
    context: contextOf(s),
  }, s.request);
}

function markdownTable(scenarios: Scenario[], who: string = 'A dev training instance', first: string = '#'): string {
  const rows = scenarios.map((s, i) => {
    const context = [
      s.prefix !== undefined ? `s3:prefix=${s.prefix}` : '',
      s.tags ? `tags ${Object.entries(s.tags).map(([k, v]) => `${k}=${v}`).join(', ')}` : '',
      s.action.startsWith('ec2:Terminate') && s.from === null ? 'not from an instance' : '',
    ].filter(Boolean).join('; ');
    const resource = s.resource.replace(`arn:aws:s3:::${BUCKET}`, '{bucket}').replace(`arn:aws:s3:::${OTHER_BUCKET}`, '{prod bucket}')
      .replace(`arn:aws:ec2:${REGION}:${ACCOUNT}:`, '').replace(/arn:aws:ec2:([^:]+):\d+:/, '$1: ').replace(SELF, `${SELF} (itself)`);
    const label = first === '#' ? String(i + 1) : (s as any).grantee;
    return `| ${label} | ${s.request} | \`${s.action}\` | \`${resource}\` | ${context} | ${s.allowed ? '**allowed**' : 'denied'} |`;
  });
  return [`| ${first} | ${who} tries to… | Action | Resource | Context | Result |`, '|---|---|---|---|---|---|', ...rows].join('\n');
}

describe('TrainingInstanceRole, simulated', () => {
  const all = synthesizedPolicies();
  const policies = all.instance;

  test('evaluates the three inline policies of the template', () => {
    expect(policies.map(p => p.name)).toEqual(['S3ReadAccess', 'S3WriteAccess', 'EC2SelfManagement', 'ReadRunSecrets']);
  });

  test.each(SCENARIOS.map((s, i) => [i + 1, s.request, s.allowed ? 'allowed' : 'denied', s] as const))(
    '%i. a dev instance may %s: %s', async (_n, _request, _expected, scenario) => {
      const result = await simulate(policies, scenario);
      expect(result.overallResult).toBe(scenario.allowed ? 'Allowed' : 'ImplicitlyDenied');
      // Every context key given applies to the action: none was silently ignored.
      expect(result.result?.ignoredContextKeys ?? []).toEqual([]);
    });

  describe('with terminateSelfOnly: false', () => {
    const supervisor = synthesizedPolicies({ terminateSelfOnly: false }).instance;
    test.each(SUPERVISOR_SCENARIOS.map(s => [s.request, s.allowed ? 'allowed' : 'denied', s] as const))(
      'a dev instance may %s: %s', async (_request, _expected, scenario) => {
        expect((await simulate(supervisor, scenario)).overallResult).toBe(scenario.allowed ? 'Allowed' : 'ImplicitlyDenied');
      });
  });

  describe('with sessionManager: true', () => {
    const shell = synthesizedPolicies({ sessionManager: true }).instance;
    test('adds one inline policy, SessionManager', () => {
      expect(shell.map(p => p.name)).toEqual(['S3ReadAccess', 'S3WriteAccess', 'EC2SelfManagement', 'SessionManager', 'ReadRunSecrets']);
    });
    test.each(SESSION_MANAGER_SCENARIOS.map(s => [s.request, s.allowed ? 'allowed' : 'denied', s] as const))(
      'a dev instance may %s: %s', async (_request, _expected, scenario) => {
        const result = await simulate(shell, scenario);
        expect(result.overallResult).toBe(scenario.allowed ? 'Allowed' : 'ImplicitlyDenied');
        expect(result.result?.ignoredContextKeys ?? []).toEqual([]);
      });
  });

  describe('the run secrets', () => {
    const withoutContext = policies.map(p => ({
      name: p.name,
      policy: JSON.parse(JSON.stringify(p.policy, (key, value) => key === ENCRYPTION_CONTEXT ||
        (key === 'StringLike' && Object.keys(value).every(k => k === ENCRYPTION_CONTEXT)) ? undefined : value)),
    }));
    test("narrows the decrypt to this environment's secrets (kms:EncryptionContext:PARAMETER_ARN)", () => {
      const decrypt = policies.flatMap(p => p.policy.Statement).filter((st: any) => st.Action === 'kms:Decrypt');
      expect(decrypt).toEqual([{
        Sid: 'DecryptTheRunSecrets',
        Effect: 'Allow',
        Action: 'kms:Decrypt',
        Resource: 'arn:*:kms:*:*:key/*',
        Condition: {
          StringEquals: { 'kms:ViaService': `ssm.${REGION}.amazonaws.com` },
          StringLike: { [ENCRYPTION_CONTEXT]: parameter('chronos-training/dev/secrets/*') },
        },
      }]);
    });
    test('with secretsKey, decrypts with that key only', () => {
      const app = new App();
      const keys = new ChronosTrainingStack(app, 'KeyStack', { environmentName: 'keys', env: { account: ACCOUNT, region: REGION } });
      const keyed = new ChronosTrainingStack(app, 'Keyed', {
        environmentName: 'dev',
        env: { account: ACCOUNT, region: REGION },
        instanceRoleProps: { secretsKey: kms.Key.fromKeyArn(keys, 'Imported', `arn:aws:kms:${REGION}:${ACCOUNT}:key/1111`) },
      });
      const template = Template.fromStack(keyed);
      template.hasResourceProperties('AWS::IAM::Role', {
        Policies: Match.arrayWith([Match.objectLike({
          PolicyName: 'ReadRunSecrets',
          PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Action: 'kms:Decrypt', Resource: `arn:aws:kms:${REGION}:${ACCOUNT}:key/1111` })]) },
        })]),
      });
    });
    test.each(SECRETS_SCENARIOS.map(s => [s.request, s.allowed ? 'allowed' : 'denied', s] as const))(
      'a dev instance may %s: %s', async (_request, _expected, scenario) => {
        const result = scenario.action.startsWith('kms:')
          ? await simulateRequest(withoutContext, {
            principal: `arn:aws:iam::${ACCOUNT}:role/ChronosTraining-dev-Stack-FoundationInstanceRole`,
            action: scenario.action,
            resource: scenario.resource,
            context: contextOf(scenario),
          }, scenario.request, KEY_POLICY_THAT_DELEGATES_TO_IAM)
          : await simulate(withoutContext, scenario);
        expect(result.overallResult).toBe(scenario.allowed ? 'Allowed' : 'ImplicitlyDenied');
        expect(result.result?.ignoredContextKeys ?? []).toEqual([]);
      });
  });

  describe('principals given the prefix-scoped grants', () => {
    test('each has one policy from the grants', () => {
      expect([all.pipeline.length, all.evaluation.length]).toEqual([1, 1]);
    });
    test.each(GRANTEE_SCENARIOS.map(s => [s.grantee, s.request, s.allowed ? 'allowed' : 'denied', s] as const))(
      'the %s role may %s: %s', async (grantee, _request, _expected, s) => {
        const result = await simulate(all[grantee], { ...s, from: null });
        expect(result.overallResult).toBe(s.allowed ? 'Allowed' : 'ImplicitlyDenied');
      });
  });

  test.each([
    ['the role table', markdownTable(SCENARIOS)],
    ['the grantee table', markdownTable(GRANTEE_SCENARIOS, 'A role with grants', 'Grantee')],
    ['the Session Manager table', markdownTable(SESSION_MANAGER_SCENARIOS, 'A dev instance with sessionManager')],
    ['the run secrets table', markdownTable(SECRETS_SCENARIOS, 'A dev training instance (run secrets)')],
  ])('docs/IAM.md holds %s', (_name, table) => {
    const doc = fs.readFileSync(path.join(__dirname, '..', '..', 'docs', 'IAM.md'), 'utf8');
    if (!doc.includes(table)) {
      throw new Error(`docs/IAM.md does not contain the current table; paste this:\n\n${table}\n`);
    }
  });
});

// The launch template's boot script carries no agent: its loader fetches the run's agent, which the launcher uploads
// to {env}/runs/{runId}/agent/chronos_run_agent.py, signed with the instance role (docs/RUNS.md, "On the instance").
describe('TrainingInstanceRole, simulated: the boot script\'s loader', () => {
  const policies = synthesizedPolicies().instance;
  test.each([
    ['reads the run\'s agent', object('dev/runs/r1/agent/chronos_run_agent.py'), 'Allowed'],
    ['does not read another environment\'s run agent', object('prod/runs/r1/agent/chronos_run_agent.py'), 'ImplicitlyDenied'],
  ])('%s', async (request, resource, expected) => {
    expect((await simulate(policies, { request, action: 's3:GetObject', resource, allowed: expected === 'Allowed' })).overallResult).toBe(expected);
  });
});
