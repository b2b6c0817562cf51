/*
 * The TrainingBatchQueue roles' and grants' exact powers, as tables of requests
 * evaluated by an IAM policy simulator against the policies synthesized into the
 * template (resolved from the template, not rebuilt by hand).
 */
import { App, CfnResource, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import { ChronosTrainingFoundation, FoundationExports, TrainingBatchQueue } from '../../src';
import { ACCOUNT, instanceArn, REGION, resolver, simulate } from '../iam-simulation';

const BUCKET = `chronos-training-dev-${ACCOUNT}-${REGION}`;
const object = (key: string) => `arn:aws:s3:::${BUCKET}/${key}`;
const batchArn = (resource: string, region = REGION) => `arn:aws:batch:${region}:${ACCOUNT}:${resource}`;
const ecsArn = (resource: string) => `arn:aws:ecs:${REGION}:${ACCOUNT}:${resource}`;
const QUEUE = batchArn('job-queue/ChronosTraining-dev-Batch');
const MULTI_NODE_QUEUE = batchArn('job-queue/ChronosTraining-dev-Batch-MultiNode');
const JOB = batchArn('job/8f1a2b3c-1111-2222-3333-444455556666');
const CLUSTER = 'ChronosTraining-dev-Batch-OnDemand_Batch_6d67ab71-4455-3613-b981-4c30a030fb90';
const LOG_STREAM = `arn:aws:logs:${REGION}:${ACCOUNT}:log-group:/chronos-training/dev/batch:log-stream:job/default/abc`;
const role = (name: string) => `arn:aws:iam::${ACCOUNT}:role/${name}`;

type Who = 'submitter' | 'registrar' | 'job' | 'instance' | 'launcher';

interface Scenario {
  readonly who: Who;
  readonly request: string;
  readonly action: string;
  readonly resource: string;
  /** Region of the request (aws:RequestedRegion). */
  readonly region?: string;
  /** Tags of a target EC2 instance. */
  readonly tags?: Record<string, string>;
  /** `s3:prefix` of a ListBucket request. */
  readonly prefix?: string;
  /** Tags of the request (`aws:RequestTag/*`), as a SubmitJob with tags sends. */
  readonly requestTags?: Record<string, string>;
  readonly allowed: boolean;
}

const devTags = { Project: 'Chronos-Training', Environment: 'dev' };

const SCENARIOS: Scenario[] = [
  // A principal given grantSubmit (a CI role, a researcher).
  { who: 'submitter', request: 'submit a job to the queue', action: 'batch:SubmitJob', resource: QUEUE, allowed: true },
  { who: 'submitter', request: 'submit a multi-node job to the multi-node queue', action: 'batch:SubmitJob', resource: MULTI_NODE_QUEUE, allowed: true },
  { who: 'submitter', request: 'submit with the job definition by name', action: 'batch:SubmitJob', resource: batchArn('job-definition/ChronosTraining-dev-Training'), allowed: true },
  { who: 'submitter', request: 'submit with a revision of the job definition', action: 'batch:SubmitJob', resource: batchArn('job-definition/ChronosTraining-dev-Training:7'), allowed: true },
  { who: 'submitter', request: 'submit with the multi-node job definition', action: 'batch:SubmitJob', resource: batchArn('job-definition/ChronosTraining-dev-MultiNode:1'), allowed: true },
  { who: 'submitter', request: 'create the job (the new job ARN)', action: 'batch:SubmitJob', resource: JOB, allowed: true },
  { who: 'submitter', request: 'describe jobs', action: 'batch:DescribeJobs', resource: '*', allowed: true },
  { who: 'submitter', request: 'list jobs', action: 'batch:ListJobs', resource: '*', allowed: true },
  { who: 'submitter', request: 'describe job queues', action: 'batch:DescribeJobQueues', resource: '*', allowed: true },
  { who: 'submitter', request: 'cancel a job', action: 'batch:CancelJob', resource: JOB, allowed: true },
  { who: 'submitter', request: 'terminate a job', action: 'batch:TerminateJob', resource: JOB, allowed: true },
  { who: 'submitter', request: 'submit to another queue', action: 'batch:SubmitJob', resource: batchArn('job-queue/prod-queue'), allowed: false },
  { who: 'submitter', request: 'submit with another job definition', action: 'batch:SubmitJob', resource: batchArn('job-definition/Admin:1'), allowed: false },
  { who: 'submitter', request: 'submit with a job definition whose name starts the same', action: 'batch:SubmitJob', resource: batchArn('job-definition/ChronosTraining-dev-TrainingEvil:1'), allowed: false },
  { who: 'submitter', request: 'submit in another region', action: 'batch:SubmitJob', resource: batchArn('job-definition/ChronosTraining-dev-Training:1', 'us-west-2'), region: 'us-west-2', allowed: false },
  { who: 'submitter', request: 'cancel a job in another region', action: 'batch:CancelJob', resource: batchArn('job/1', 'us-west-2'), region: 'us-west-2', allowed: false },
  { who: 'submitter', request: 'register a job definition', action: 'batch:RegisterJobDefinition', resource: batchArn('job-definition/ChronosTraining-dev-Training'), allowed: false },
  { who: 'submitter', request: 'pass the job role', action: 'iam:PassRole', resource: role('BatchJobRole'), allowed: false },
  { who: 'submitter', request: 'change the compute environment', action: 'batch:UpdateComputeEnvironment', resource: batchArn('compute-environment/ChronosTraining-dev-Batch-OnDemand'), allowed: false },
  { who: 'submitter', request: 'delete the queue', action: 'batch:DeleteJobQueue', resource: QUEUE, allowed: false },
  // A SubmitJob with tags also authorizes batch:TagResource on the queue, the job definition and the new job (Service Authorization
  // Reference, AWS Batch: https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsbatch.html; it defines no
  // batch:CreateAction key, so TagResource cannot be limited to tagging at submission).
  { who: 'submitter', request: 'submit a tagged job', action: 'batch:SubmitJob', resource: QUEUE, requestTags: { RunId: 'r42' }, allowed: true },
  { who: 'submitter', request: 'tag the new job at submission', action: 'batch:TagResource', resource: JOB, requestTags: { RunId: 'r42' }, allowed: true },
  { who: 'submitter', request: 'tag at submission: the queue', action: 'batch:TagResource', resource: QUEUE, requestTags: { RunId: 'r42' }, allowed: true },
  { who: 'submitter', request: 'tag at submission: the job definition', action: 'batch:TagResource', resource: batchArn('job-definition/ChronosTraining-dev-Training:7'), requestTags: { RunId: 'r42' }, allowed: true },
  { who: 'submitter', request: 'tag another queue', action: 'batch:TagResource', resource: batchArn('job-queue/prod-queue'), requestTags: { RunId: 'r42' }, allowed: false },
  { who: 'submitter', request: 'tag a compute environment', action: 'batch:TagResource', resource: batchArn('compute-environment/ChronosTraining-dev-Batch-OnDemand'), allowed: false },
  // A principal given grantRegisterJobDefinition (a CI role that publishes images).
  { who: 'registrar', request: 'register a new revision of the job definition', action: 'batch:RegisterJobDefinition', resource: batchArn('job-definition/ChronosTraining-dev-Training'), allowed: true },
  { who: 'registrar', request: 'pass the job role', action: 'iam:PassRole', resource: role('BatchJobRole'), allowed: true },
  { who: 'registrar', request: 'pass the execution role', action: 'iam:PassRole', resource: role('BatchExecutionRole'), allowed: true },
  { who: 'registrar', request: 'register another job definition', action: 'batch:RegisterJobDefinition', resource: batchArn('job-definition/Miner'), allowed: false },
  { who: 'registrar', request: 'pass another role', action: 'iam:PassRole', resource: role('Admin'), allowed: false },
  { who: 'registrar', request: 'pass the instance role', action: 'iam:PassRole', resource: role('BatchInstanceRole'), allowed: false },
  { who: 'registrar', request: 'deregister the job definition', action: 'batch:DeregisterJobDefinition', resource: batchArn('job-definition/ChronosTraining-dev-Training:1'), allowed: false },
  // The job role: what a training container can do.
  { who: 'job', request: 'read a cached dataset', action: 's3:GetObject', resource: object('cached-datasets/2026/11/prices.parquet'), allowed: true },
  { who: 'job', request: 'list runtime scripts', action: 's3:ListBucket', resource: `arn:aws:s3:::${BUCKET}`, prefix: 'runtime/scripts/', allowed: true },
  { who: 'job', request: 'write a checkpoint under dev/', action: 's3:PutObject', resource: object('dev/runs/r1/checkpoint.pt'), allowed: true },
  { who: 'job', request: 'write into prod/', action: 's3:PutObject', resource: object('prod/runs/r1/model.pt'), allowed: false },
  { who: 'job', request: 'overwrite a cached dataset', action: 's3:PutObject', resource: object('cached-datasets/2026/11/prices.parquet'), allowed: false },
  // The run agent wrapping the job's command (docs/RUNS.md, "AWS Batch"): the run ID is the Batch job ID.
  { who: 'job', request: 'the run agent: write the run status', action: 's3:PutObject', resource: object('dev/runs/j1/status.json'), allowed: true },
  { who: 'job', request: 'the run agent: write a log chunk', action: 's3:PutObject', resource: object('dev/logs/j1/001/stdout/0000000001.log'), allowed: true },
  { who: 'job', request: 'the run agent: upload a checkpoint file', action: 's3:PutObject', resource: object('dev/checkpoints/j1/data/0000000001/last.pt'), allowed: true },
  { who: 'job', request: 'the run agent: read a checkpoint file', action: 's3:GetObject', resource: object('dev/checkpoints/j1/data/0000000001/last.pt'), allowed: true },
  { who: 'job', request: 'the run agent: list checkpoint manifests', action: 's3:ListBucket', resource: `arn:aws:s3:::${BUCKET}`, prefix: 'dev/checkpoints/j1/manifests/', allowed: true },
  { who: 'job', request: 'the run agent: read a runtime script', action: 's3:GetObject', resource: object('runtime/scripts/x'), allowed: true },
  { who: 'job', request: 'the run agent: list prod checkpoints', action: 's3:ListBucket', resource: `arn:aws:s3:::${BUCKET}`, prefix: 'prod/checkpoints/', allowed: false },
  { who: 'job', request: 'terminate instances', action: 'ec2:TerminateInstances', resource: instanceArn('i-0aaaaaaaaaaaaaaa1'), tags: devTags, allowed: false },
  { who: 'job', request: 'submit another job', action: 'batch:SubmitJob', resource: QUEUE, allowed: false },
  { who: 'job', request: 'pass a role', action: 'iam:PassRole', resource: role('Admin'), allowed: false },
  // The container instance role: what the ECS agent (and anything on the host) can do.
  { who: 'instance', request: 'register with its compute environment\'s cluster', action: 'ecs:RegisterContainerInstance', resource: ecsArn(`cluster/${CLUSTER}`), allowed: true },
  { who: 'instance', request: 'submit a task state change', action: 'ecs:SubmitTaskStateChange', resource: ecsArn(`cluster/${CLUSTER}`), allowed: true },
  { who: 'instance', request: 'poll for tasks', action: 'ecs:Poll', resource: ecsArn(`container-instance/${CLUSTER}/0123abcd`), allowed: true },
  { who: 'instance', request: 'discover the poll endpoint', action: 'ecs:DiscoverPollEndpoint', resource: '*', allowed: true },
  { who: 'instance', request: 'get an ECR token', action: 'ecr:GetAuthorizationToken', resource: '*', allowed: true },
  { who: 'instance', request: 'pull an image layer', action: 'ecr:GetDownloadUrlForLayer', resource: `arn:aws:ecr:${REGION}:${ACCOUNT}:repository/training`, allowed: true },
  { who: 'instance', request: 'write job logs', action: 'logs:PutLogEvents', resource: LOG_STREAM, allowed: true },
  { who: 'instance', request: 'register with another cluster', action: 'ecs:RegisterContainerInstance', resource: ecsArn('cluster/default'), allowed: false },
  { who: 'instance', request: 'poll for another cluster\'s tasks', action: 'ecs:Poll', resource: ecsArn('container-instance/prod_Batch_1/0123abcd'), allowed: false },
  { who: 'instance', request: 'create a cluster', action: 'ecs:CreateCluster', resource: ecsArn('cluster/x'), allowed: false },
  { who: 'instance', request: 'write another log group', action: 'logs:PutLogEvents', resource: `arn:aws:logs:${REGION}:${ACCOUNT}:log-group:other:log-stream:x`, allowed: false },
  { who: 'instance', request: 'read training data', action: 's3:GetObject', resource: object('dev/runs/r1/model.pt'), allowed: false },
  { who: 'instance', request: 'terminate instances', action: 'ec2:TerminateInstances', resource: instanceArn('i-0aaaaaaaaaaaaaaa1'), tags: devTags, allowed: false },
  // A launcher in another app, given grantSubmitBatchJob by a foundation imported with fromEnvironment (ARNs from the SSM parameters,
  // the job definitions' without revision: SubmitJob takes them for the latest active revision).
  { who: 'launcher', request: 'submit to the queue', action: 'batch:SubmitJob', resource: QUEUE, allowed: true },
  { who: 'launcher', request: 'submit with the stored job definition ARN (no revision)', action: 'batch:SubmitJob', resource: batchArn('job-definition/ChronosTraining-dev-Training'), allowed: true },
  { who: 'launcher', request: 'submit with a revision of the job definition', action: 'batch:SubmitJob', resource: batchArn('job-definition/ChronosTraining-dev-Training:12'), allowed: true },
  { who: 'launcher', request: 'submit to the multi-node queue', action: 'batch:SubmitJob', resource: MULTI_NODE_QUEUE, allowed: true },
  { who: 'launcher', request: 'submit with the multi-node job definition', action: 'batch:SubmitJob', resource: batchArn('job-definition/ChronosTraining-dev-MultiNode:3'), allowed: true },
  { who: 'launcher', request: 'create the job', action: 'batch:SubmitJob', resource: JOB, allowed: true },
  { who: 'launcher', request: 'tag the new job at submission', action: 'batch:TagResource', resource: JOB, requestTags: { RunId: 'r42' }, allowed: true },
  { who: 'launcher', request: 'submit to another queue', action: 'batch:SubmitJob', resource: batchArn('job-queue/prod-queue'), allowed: false },
  { who: 'launcher', request: 'submit with another job definition', action: 'batch:SubmitJob', resource: batchArn('job-definition/Admin:1'), allowed: false },
  { who: 'launcher', request: 'tag another queue', action: 'batch:TagResource', resource: batchArn('job-queue/prod-queue'), allowed: false },
  { who: 'launcher', request: 'register a job definition', action: 'batch:RegisterJobDefinition', resource: batchArn('job-definition/ChronosTraining-dev-Training'), allowed: false },
];

/** What the foundation's SSM parameters hold once deployed (the job definitions' ARNs without revision). */
const PARAMETER_VALUES: Record<string, string> = {
  [FoundationExports.BATCH_JOB_QUEUE_ARN]: QUEUE,
  [FoundationExports.BATCH_JOB_DEFINITION_ARN]: batchArn('job-definition/ChronosTraining-dev-Training'),
  [FoundationExports.BATCH_MULTI_NODE_JOB_QUEUE_ARN]: MULTI_NODE_QUEUE,
  [FoundationExports.BATCH_MULTI_NODE_JOB_DEFINITION_ARN]: batchArn('job-definition/ChronosTraining-dev-MultiNode'),
};

/** The policies of a launcher role in another app, granted by an imported foundation. */
function importedLauncherPolicies(): Policies {
  const stack = new Stack(new App(), 'Launcher', { env: { account: ACCOUNT, region: REGION } });
  const imported = ChronosTrainingFoundation.fromEnvironment(stack, 'Dev', 'dev', { batch: true, batchMultiNode: true });
  const launcher = new iam.Role(stack, 'Launcher', { assumedBy: new iam.AccountRootPrincipal() });
  imported.grantSubmitBatchJob(launcher);
  const template = Template.fromStack(stack).toJSON();
  const parameters = Object.fromEntries(Object.entries<any>(template.Parameters ?? {})
    .filter(([, p]) => String(p.Default).startsWith('/chronos-training/dev/'))
    .map(([id, p]) => [id, PARAMETER_VALUES[String(p.Default).split('/').pop()!] ?? 'unused']));
  const resolve = resolver(template.Resources, parameters);
  return Object.values<any>(template.Resources).filter(p => p.Type === 'AWS::IAM::Policy')
    .map(p => ({ name: p.Properties.PolicyName, policy: resolve(p.Properties.PolicyDocument) }));
}

type Policies = Array<{ name: string; policy: any }>;

/** Every policy of each principal in a synthesized dev stack (inline and attached), resolved. */
function synthesizedPolicies(): Record<Who, Policies> {
  const stack = new Stack(new App(), 'S', { env: { account: ACCOUNT, region: REGION } });
  const foundation = new ChronosTrainingFoundation(stack, 'Foundation', { environmentName: 'dev' });
  const queue = new TrainingBatchQueue(stack, 'Batch', {
    environmentName: 'dev',
    costCenter: 'train',
    vpc: foundation.vpc,
    subnets: foundation.publicSubnets,
    securityGroup: foundation.securityGroup,
    bucket: foundation.bucket,
    image: ecs.ContainerImage.fromRegistry('public.ecr.aws/docker/library/python:3.12'),
    multiNode: { numNodes: 2, instanceType: new ec2.InstanceType('g6.12xlarge'), maxvCpus: 96 },
  });
  const submitter = new iam.Role(stack, 'Submitter', { assumedBy: new iam.AccountRootPrincipal() });
  const registrar = new iam.Role(stack, 'Registrar', { assumedBy: new iam.AccountRootPrincipal() });
  queue.grantSubmit(submitter);
  queue.grantRegisterJobDefinition(registrar);
  const resources = Template.fromStack(stack).toJSON().Resources;
  const resolve = resolver(resources);
  const policiesOf = (r: iam.IRole): Policies => {
    const id = stack.getLogicalId(r.node.defaultChild as CfnResource);
    const inline = (resources[id].Properties.Policies ?? []).map((p: any) => ({ name: p.PolicyName, policy: resolve(p.PolicyDocument) }));
    const attached = Object.values<any>(resources).filter(p => p.Type === 'AWS::IAM::Policy' && p.Properties.Roles.some((x: any) => x.Ref === id))
      .map(p => ({ name: p.Properties.PolicyName, policy: resolve(p.Properties.PolicyDocument) }));
    expect(resources[id].Properties.ManagedPolicyArns).toBeUndefined();
    return [...inline, ...attached];
  };
  return {
    submitter: policiesOf(submitter),
    registrar: policiesOf(registrar),
    job: policiesOf(queue.jobRole),
    instance: policiesOf(queue.instanceRole),
    launcher: importedLauncherPolicies(),
  };
}

function contextOf(s: Scenario): Record<string, string> {
  const context: Record<string, string> = { 'aws:RequestedRegion': s.region ?? REGION };
  for (const [key, value] of Object.entries(s.tags ?? {})) context[`ec2:ResourceTag/${key}`] = value;
  if (s.prefix !== undefined) context['s3:prefix'] = s.prefix;
  for (const [key, value] of Object.entries(s.requestTags ?? {})) context[`aws:RequestTag/${key}`] = value;
  return context;
}

describe('TrainingBatchQueue roles and grants, simulated', () => {
  const policies = synthesizedPolicies();

  test('the table has allowed and denied requests for every principal', () => {
    for (const who of ['submitter', 'registrar', 'job', 'instance', 'launcher'] as Who[]) {
      expect(SCENARIOS.filter(s => s.who === who && s.allowed).length).toBeGreaterThanOrEqual(3);
      expect(SCENARIOS.filter(s => s.who === who && !s.allowed).length).toBeGreaterThanOrEqual(3);
    }
  });

  test.each(SCENARIOS.map((s, i) => [i + 1, s.who, s.request, s.allowed ? 'allowed' : 'denied', s] as const))(
    '%i. the %s role may %s: %s', async (_n, who, request, _expected, s) => {
      const result = await simulate(policies[who], {
        principal: role(`S-${who}`), action: s.action, resource: s.resource, context: contextOf(s),
      }, request);
      expect(result.overallResult).toBe(s.allowed ? 'Allowed' : 'ImplicitlyDenied');
    });
});
