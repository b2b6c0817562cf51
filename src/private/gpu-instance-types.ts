import * as ec2 from 'aws-cdk-lib/aws-ec2';

/*
 * What the library knows of the NVIDIA GPU instance types a Batch queue may launch:
 * vCPUs, GPUs and memory, to default a multi-node job's node to its whole instance
 * and to refuse at synthesis what Batch could never place. Internal: not API.
 *
 * Figures: the Amazon EC2 instance type pages (aws.amazon.com/ec2/instance-types/g6/ and
 * siblings, U: as known, not re-read line by line), cross-checked against
 * meta-pytorch/torchx `named_resources_aws.py` (S). A type missing here is not an
 * error: the checks that need its figures are skipped.
 */

/** vCPUs, NVIDIA GPUs and memory (GiB) of one instance type. */
export interface GpuInstanceShape {
  readonly vcpus: number;
  readonly gpus: number;
  readonly memoryGiB: number;
}

/** [vcpus, gpus, memory GiB] by size, for the families whose sizes share one shape per size. */
type Sizes = Record<string, [number, number, number]>;

const G5_G6: Sizes = {
  'xlarge': [4, 1, 16],
  '2xlarge': [8, 1, 32],
  '4xlarge': [16, 1, 64],
  '8xlarge': [32, 1, 128],
  '12xlarge': [48, 4, 192],
  '16xlarge': [64, 1, 256],
  '24xlarge': [96, 4, 384],
  '48xlarge': [192, 8, 768],
};

/** g6e: the g5/g6 shapes with twice the memory per size. */
const G6E: Sizes = Object.fromEntries(Object.entries(G5_G6).map(([size, [vcpus, gpus, memory]]) => [size, [vcpus, gpus, 2 * memory]]));

/** g4dn: the g5/g6 shapes up to 16xlarge, and metal. */
const G4DN: Sizes = {
  ...Object.fromEntries(Object.entries(G5_G6).filter(([size]) => size !== '24xlarge' && size !== '48xlarge')),
  metal: [96, 8, 384],
};

const FAMILIES: Record<string, Sizes> = {
  g4dn: G4DN,
  g5: G5_G6,
  g6: G5_G6,
  g6e: G6E,
  p3: { '2xlarge': [8, 1, 61], '8xlarge': [32, 4, 244], '16xlarge': [64, 8, 488] },
  p3dn: { '24xlarge': [96, 8, 768] },
  p4d: { '24xlarge': [96, 8, 1152] },
  p4de: { '24xlarge': [96, 8, 1152] },
  p5: { '48xlarge': [192, 8, 2048] },
  p5e: { '48xlarge': [192, 8, 2048] },
  p5en: { '48xlarge': [192, 8, 2048] },
};

/** Families with NVIDIA GPUs (G and P, but not the AMD g4ad nor the Graviton g5g, which the x86 NVIDIA ECS AMI cannot run). */
const NVIDIA_FAMILY = /^(g|gr|p)\d+[a-z]*$/;
const NOT_NVIDIA = new Set(['g4ad', 'g5g']);

/** The shape of an instance type, or undefined when the table does not know it. */
export function gpuInstanceShape(instanceType: ec2.InstanceType): GpuInstanceShape | undefined {
  const [family, size] = instanceType.toString().split('.');
  const shape = FAMILIES[family]?.[size];
  return shape ? { vcpus: shape[0], gpus: shape[1], memoryGiB: shape[2] } : undefined;
}

/** Whether an instance type has no NVIDIA GPU at all (m5, c6i, inf2, g4ad, ...), so a GPU job can never run on it. */
export function hasNoNvidiaGpu(instanceType: ec2.InstanceType): boolean {
  const family = instanceType.toString().split('.')[0];
  return NOT_NVIDIA.has(family) || !NVIDIA_FAMILY.test(family);
}

/**
 * Memory a whole-instance container may reserve: the instance's memory less 5%. Batch's
 * AMI reserves 32 MiB for the ECS agent, the kernel and platform take more of what EC2
 * advertises, and Batch recommends a 5% buffer ("Reserve system memory",
 * https://docs.aws.amazon.com/batch/latest/userguide/ecs-reserved-memory.html; "Compute resource
 * memory management", https://docs.aws.amazon.com/batch/latest/userguide/memory-management.html).
 */
export function wholeInstanceMemoryMiB(shape: GpuInstanceShape): number {
  return Math.floor(shape.memoryGiB * 1024 * 0.95);
}
