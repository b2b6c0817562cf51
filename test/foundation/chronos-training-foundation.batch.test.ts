/*
 * The foundation's opt-in AWS Batch queue (`batch`): nothing without it; with it, the queue on the
 * foundation's subnets, security group and bucket, its exports and parameters, and the run lifetime
 * as the job timeout.
 */
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import { ChronosTrainingFoundation, ChronosTrainingFoundationProps, ChronosTrainingStack, FoundationExports } from '../../src';
import { resourcesOf } from '../helpers';

const image = ecs.ContainerImage.fromRegistry('public.ecr.aws/docker/library/python:3.12');
const MULTI_NODE = { numNodes: 2, instanceType: new ec2.InstanceType('g6.12xlarge'), maxvCpus: 96 };

function synth(props: ChronosTrainingFoundationProps) {
  const stack = new ChronosTrainingStack(new App(), 'ChronosTraining-dev-Stack', {
    environmentName: 'dev', env: { account: '123456789012', region: 'us-east-1' }, ...props,
  });
  return { stack, foundation: stack.foundation, template: Template.fromStack(stack) };
}

const timeoutOf = (template: Template) => resourcesOf(template, 'AWS::Batch::JobDefinition')
  .map(jd => jd.Properties.Timeout?.AttemptDurationSeconds);

describe('ChronosTrainingFoundation with batch', () => {
  test('without batch: no Batch resource, no Batch export, no batchQueue', () => {
    const { foundation, template } = synth({});
    expect(Object.keys(template.toJSON().Resources).filter(id => template.toJSON().Resources[id].Type.startsWith('AWS::Batch::'))).toEqual([]);
    expect(foundation.batchQueue).toBeUndefined();
    expect(foundation.batchJobQueue).toBeUndefined();
    expect(foundation.exportNames.filter(n => n.includes('Batch'))).toEqual([]);
  });

  test('with batch: the queue uses every public subnet and the training security group; its ARNs are exported and in SSM', () => {
    const { stack, foundation, template } = synth({ batch: { image }, networkProps: { maxAzs: 2 } });
    expect(foundation.batchQueue).toBeDefined();
    expect(foundation.batchJobQueue).toBe(foundation.batchQueue!.jobQueue);
    expect(foundation.exportNames.slice(-2)).toEqual([
      FoundationExports.exportName('dev', FoundationExports.BATCH_JOB_QUEUE_ARN),
      FoundationExports.exportName('dev', FoundationExports.BATCH_JOB_DEFINITION_ARN),
    ]);
    expect(foundation.parameterNames.slice(-2)).toEqual([
      FoundationExports.parameterName('dev', FoundationExports.BATCH_JOB_QUEUE_ARN),
      FoundationExports.parameterName('dev', FoundationExports.BATCH_JOB_DEFINITION_ARN),
    ]);
    const [ce] = resourcesOf(template, 'AWS::Batch::ComputeEnvironment');
    expect(ce.Properties.ComputeResources.Subnets).toEqual(foundation.publicSubnets.map(s => stack.resolve(s.subnetId)));
    expect(ce.Properties.ComputeResources.SecurityGroupIds).toEqual([stack.resolve(foundation.securityGroup.securityGroupId)]);
    expect(ce.Properties.ComputeResources.MinvCpus).toBe(0);
  });

  // A job definition's Ref names its revision, which CloudFormation deregisters on the next update (cloudformation-coverage-roadmap
  // #1761). SubmitJob takes the ARN without revision for the latest active one ("SubmitJob", AWS Batch API Reference,
  // https://docs.aws.amazon.com/batch/latest/APIReference/API_SubmitJob.html: "If the revision is not specified, then the latest
  // active revision is used").
  test('the exported and stored job definition ARNs have no revision (SubmitJob then uses the latest active one)', () => {
    const { template } = synth({ batch: { image, multiNode: MULTI_NODE } });
    const withoutRevision = (name: string) => ({
      'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:batch:us-east-1:123456789012:job-definition/${name}`]],
    });
    const exported = (suffix: string) => Object.values<any>(template.toJSON().Outputs)
      .find(o => o.Export.Name === FoundationExports.exportName('dev', suffix)).Value;
    expect(exported(FoundationExports.BATCH_JOB_DEFINITION_ARN)).toEqual(withoutRevision('ChronosTraining-dev-Training'));
    expect(exported(FoundationExports.BATCH_MULTI_NODE_JOB_DEFINITION_ARN)).toEqual(withoutRevision('ChronosTraining-dev-MultiNode'));
    const parameters = resourcesOf(template, 'AWS::SSM::Parameter').filter(p => p.Properties.Name.includes('JobDefinitionArn'));
    expect(parameters.map(p => p.Properties.Value)).toEqual([withoutRevision('ChronosTraining-dev-Training'), withoutRevision('ChronosTraining-dev-MultiNode')]);
  });

  test('grantSubmitBatchJob grants what batchQueue.grantSubmit grants, on every queue and job definition', () => {
    const { stack, foundation } = synth({ batch: { image, multiNode: MULTI_NODE } });
    const viaFoundation = new iam.Role(stack, 'ViaFoundation', { assumedBy: new iam.AccountRootPrincipal() });
    const viaQueue = new iam.Role(stack, 'ViaQueue', { assumedBy: new iam.AccountRootPrincipal() });
    foundation.grantSubmitBatchJob(viaFoundation);
    foundation.batchQueue!.grantSubmit(viaQueue);
    const statementsOf = (role: iam.Role) => stack.resolve((role.node.findChild('DefaultPolicy') as iam.Policy).document.toJSON().Statement);
    const [submit] = statementsOf(viaFoundation);
    expect(submit.Action).toEqual(['batch:SubmitJob', 'batch:TagResource']);
    expect(submit.Resource).toHaveLength(2 + 4 + 1);
    expect(statementsOf(viaFoundation).map((s: any) => s.Action)).toEqual(statementsOf(viaQueue).map((s: any) => s.Action));
  });

  test('grantSubmitBatchJob on a foundation without batch names what is missing', () => {
    const { stack, foundation } = synth({});
    expect(() => foundation.grantSubmitBatchJob(new iam.Role(stack, 'R', { assumedBy: new iam.AccountRootPrincipal() })))
      .toThrow(/grantSubmitBatchJob: the foundation of 'dev' has no Batch queue/);
  });

  test('the multi-node queue and job definition are exported too', () => {
    const { foundation } = synth({ batch: { image, multiNode: MULTI_NODE } });
    expect(foundation.exportNames.filter(n => n.includes('Batch'))).toEqual([
      FoundationExports.BATCH_JOB_QUEUE_ARN, FoundationExports.BATCH_JOB_DEFINITION_ARN,
      FoundationExports.BATCH_MULTI_NODE_JOB_QUEUE_ARN, FoundationExports.BATCH_MULTI_NODE_JOB_DEFINITION_ARN,
    ].map(s => FoundationExports.exportName('dev', s)));
  });

  test.each<[string, ChronosTrainingFoundationProps, number]>([
    ['the default run lifetime (4 h)', {}, 4 * 3600],
    ['the foundation\'s maxRunLifetime', { maxRunLifetime: Duration.hours(3) }, 3 * 3600],
    ['the foundation\'s maxRunLifetime, with the reaper', { maxRunLifetime: Duration.hours(6), runReaper: true }, 6 * 3600],
  ])('the job timeout is the run lifetime: %s', (_name, props, seconds) => {
    expect(timeoutOf(synth({ ...props, batch: { image } }).template)).toEqual([seconds]);
  });

  test('the batch options offer no second lifetime: the foundation\'s maxRunLifetime is the only spelling', () => {
    // A compile-time property, checked at run time too: the options type the foundation takes has no lifetime.
    const options: Record<string, unknown> = { image, maxRunLifetime: Duration.hours(1) };
    expect(timeoutOf(synth({ batch: options as any }).template)).toEqual([4 * 3600]);
  });

  test('fromEnvironment with batch reads the queue and job definition from their parameters', () => {
    const stack = new Stack(new App(), 'Consumer');
    const imported = ChronosTrainingFoundation.fromEnvironment(stack, 'Dev', 'dev', { batch: true });
    const parameters = Object.values(Template.fromStack(stack).toJSON().Parameters ?? {}).map((p: any) => p.Default);
    expect(parameters).toEqual(expect.arrayContaining([
      FoundationExports.parameterName('dev', FoundationExports.BATCH_JOB_QUEUE_ARN),
      FoundationExports.parameterName('dev', FoundationExports.BATCH_JOB_DEFINITION_ARN),
    ]));
    expect(imported.batchJobQueue).toBeDefined();
    expect(imported.batchJobDefinition).toBeDefined();
    expect(imported.batchMultiNodeJobQueue).toBeUndefined();
    expect(ChronosTrainingFoundation.fromEnvironment(stack, 'NoBatch', 'dev').batchJobQueue).toBeUndefined();
  });

  test('fromEnvironment with batchMultiNode reads the multi-node queue and job definition; without batch it is an error', () => {
    const stack = new Stack(new App(), 'Consumer');
    const imported = ChronosTrainingFoundation.fromEnvironment(stack, 'Dev', 'dev', { batch: true, batchMultiNode: true });
    const parameters = Object.values(Template.fromStack(stack).toJSON().Parameters ?? {}).map((p: any) => p.Default);
    expect(parameters).toEqual(expect.arrayContaining([
      FoundationExports.parameterName('dev', FoundationExports.BATCH_MULTI_NODE_JOB_QUEUE_ARN),
      FoundationExports.parameterName('dev', FoundationExports.BATCH_MULTI_NODE_JOB_DEFINITION_ARN),
    ]));
    expect(imported.batchMultiNodeJobQueue).toBeDefined();
    expect(imported.batchMultiNodeJobDefinition).toBeDefined();
    expect(() => ChronosTrainingFoundation.fromEnvironment(stack, 'Bad', 'dev', { batchMultiNode: true })).toThrow(/batchMultiNode is true without batch/);
  });

  test('an imported foundation grants job submission too (the IAM simulation table has its requests)', () => {
    const stack = new Stack(new App(), 'Consumer');
    const imported = ChronosTrainingFoundation.fromEnvironment(stack, 'Dev', 'dev', { batch: true });
    const launcher = new iam.Role(stack, 'Launcher', { assumedBy: new iam.AccountRootPrincipal() });
    imported.grantSubmitBatchJob(launcher);
    const [submit] = stack.resolve((launcher.node.findChild('DefaultPolicy') as iam.Policy).document.toJSON().Statement);
    expect(submit.Action).toEqual(['batch:SubmitJob', 'batch:TagResource']);
    expect(submit.Resource).toHaveLength(1 + 2 + 1);
  });
});
