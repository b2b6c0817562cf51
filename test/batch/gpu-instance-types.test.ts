/*
 * The internal table of NVIDIA GPU instance types that sizes multi-node nodes and refuses unplaceable jobs
 * (figures: the Amazon EC2 instance type pages, https://aws.amazon.com/ec2/instance-types/, as known).
 */
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { gpuInstanceShape, hasNoNvidiaGpu, wholeInstanceMemoryMiB } from '../../src/private/gpu-instance-types';

const shape = (type: string) => gpuInstanceShape(new ec2.InstanceType(type));

describe('GPU instance shapes', () => {
  test.each<[string, number, number, number]>([
    ['g4dn.xlarge', 4, 1, 16], ['g4dn.12xlarge', 48, 4, 192], ['g4dn.metal', 96, 8, 384],
    ['g5.xlarge', 4, 1, 16], ['g6.12xlarge', 48, 4, 192], ['g6.48xlarge', 192, 8, 768],
    ['g6e.xlarge', 4, 1, 32], ['g6e.12xlarge', 48, 4, 384], ['g6e.48xlarge', 192, 8, 1536],
    ['p4d.24xlarge', 96, 8, 1152], ['p5.48xlarge', 192, 8, 2048],
  ])('%s: %i vCPUs, %i GPUs, %i GiB', (type, vcpus, gpus, memoryGiB) => {
    expect(shape(type)).toEqual({ vcpus, gpus, memoryGiB });
  });

  test('unknown sizes and types are undefined, not guessed', () => {
    expect(shape('g4dn.24xlarge')).toBeUndefined();
    expect(shape('g7.xlarge')).toBeUndefined();
  });

  test('types without an NVIDIA GPU', () => {
    expect(['m5.large', 'c6i.32xlarge', 'inf2.xlarge', 'trn1.32xlarge', 'g4ad.xlarge', 'g5g.xlarge'].filter(t => hasNoNvidiaGpu(new ec2.InstanceType(t))))
      .toHaveLength(6);
    expect(['g4dn.xlarge', 'g6.xlarge', 'gr6.4xlarge', 'p5.48xlarge', 'g7.xlarge'].filter(t => hasNoNvidiaGpu(new ec2.InstanceType(t)))).toEqual([]);
  });

  test('a whole instance leaves 5% of its memory to the ECS agent and the system', () => {
    expect(wholeInstanceMemoryMiB({ vcpus: 48, gpus: 4, memoryGiB: 192 })).toBe(186777);
  });
});
