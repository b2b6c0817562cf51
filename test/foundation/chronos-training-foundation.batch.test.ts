/*
 * The foundation's opt-in AWS Batch queue (`batch`): nothing without it; with it, the queue on the
 * foundation's subnets, security group and bucket, its exports and parameters, and the run lifetime
 * as the job timeout.
 */
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
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

  test('a second lifetime in the batch options is an error naming maxRunLifetime', () => {
    expect(() => synth({ batch: { image, jobTimeout: Duration.hours(1) } }))
      .toThrow(/batch.jobTimeout is 1 hour: a foundation's Batch jobs last maxRunLifetime/);
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
    expect(ChronosTrainingFoundation.fromEnvironment(stack, 'NoBatch', 'dev').batchJobQueue).toBeUndefined();
  });
});
