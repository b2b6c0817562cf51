// Integration test: a ChronosTrainingFoundation with its opt-in AWS Batch queue (`batch`), with
// spot first and the on-demand fallback, and multi-node jobs. Assertions a real account also passes:
// the queues are ENABLED and VALID, the compute environments scale from 0, the job definitions are ACTIVE.
import { ExpectedResult, IntegTest, Match } from '@aws-cdk/integ-tests-alpha';
import { App, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import { ChronosTrainingFoundation } from '../src';
import { assertionStackFor } from './sample';

const env = { account: '123456789012', region: 'us-east-1' };
const app = new App();
const stack = new Stack(app, 'ChronosTrainingBatch', { env, stackName: 'ChronosTraining-batch-Stack' });
const foundation = new ChronosTrainingFoundation(stack, 'Foundation', {
  environmentName: 'batch',
  networkProps: { availabilityZones: ['us-east-1a', 'us-east-1b'] },
  // Destroyed with the test, emptied first (CloudFormation cannot delete a bucket with objects in it).
  bucketProps: { removalPolicy: RemovalPolicy.DESTROY, autoDeleteObjects: true },
  batch: {
    image: ecs.ContainerImage.fromRegistry('public.ecr.aws/docker/library/python:3.12-slim'),
    command: ['python', '-c', 'print("hello from Batch")'],
    spot: true,
    multiNode: { numNodes: 2, instanceType: new ec2.InstanceType('g6.12xlarge'), maxvCpus: 96 },
  },
});
const queue = foundation.batchQueue!;
// A submitter role, as a CI system would have.
queue.grantSubmit(new iam.Role(stack, 'Submitter', { assumedBy: new iam.AccountRootPrincipal() }));

const integ = new IntegTest(app, 'ChronosTrainingBatchQueue', {
  testCases: [stack],
  assertionStack: assertionStackFor(stack),
});

for (const name of [queue.jobQueueName, `${queue.jobQueueName}-MultiNode`]) {
  integ.assertions
    .awsApiCall('Batch', 'describeJobQueues', { jobQueues: [name] })
    .expect(ExpectedResult.objectLike({ jobQueues: [Match.objectLike({ jobQueueName: name, state: 'ENABLED', status: 'VALID' })] }));
}

integ.assertions
  .awsApiCall('Batch', 'describeComputeEnvironments', { computeEnvironments: queue.computeEnvironments.map(ce => ce.computeEnvironmentName) })
  .expect(ExpectedResult.objectLike({
    computeEnvironments: Match.arrayWith([
      Match.objectLike({ state: 'ENABLED', status: 'VALID', computeResources: Match.objectLike({ minvCpus: 0, type: 'SPOT' }) }),
      Match.objectLike({ state: 'ENABLED', status: 'VALID', computeResources: Match.objectLike({ minvCpus: 0, type: 'EC2' }) }),
    ]),
  }));

integ.assertions
  .awsApiCall('Batch', 'describeJobDefinitions', { jobDefinitionName: queue.jobDefinitionName, status: 'ACTIVE' })
  .expect(ExpectedResult.objectLike({
    jobDefinitions: Match.arrayWith([Match.objectLike({ jobDefinitionName: queue.jobDefinitionName, status: 'ACTIVE', propagateTags: true })]),
  }));

app.synth();
