import { DescribeInstanceTypeOfferingsCommand, DescribeInstanceTypesCommand, RunInstancesCommand, RunInstancesCommandInput, Tag } from '@aws-sdk/client-ec2';
import { Clients, CliError, errorCode } from './context';
import { Foundation } from './foundation';

/** Spot or on-demand. */
export type Market = 'spot' | 'on-demand';

/** One launch of one attempt. */
export interface LaunchRequest {
  readonly runId: string;
  readonly attempt: number;
  readonly name?: string;
  readonly instanceTypes: string[];
  /** The markets to try, in order. */
  readonly markets: Market[];
  /** The `MaxLifetimeHours` tag. */
  readonly maxLifetimeHours: number;
  /** The `ImageId` to send (an AMI ID or `resolve:ssm:NAME`); none: the launch template's (see chooseImage). */
  readonly imageId?: string;
}

/** The instance that was launched. */
export interface Launched {
  readonly instanceId: string;
  readonly instanceType: string;
  readonly market: Market;
  readonly subnetId: string;
  readonly zone: string;
  readonly tries: number;
}

/**
 * The errors after which the launcher tries the next zone, type or market. EC2 API Reference, "Error codes for the
 * Amazon EC2 API" (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html) documents
 * InsufficientInstanceCapacity, InsufficientHostCapacity, InsufficientFreeAddressesInSubnet, MaxSpotInstanceCountExceeded,
 * SpotMaxPriceTooLow, Unsupported, UnfulfillableCapacity, ReservationCapacityExceeded and InsufficientCapacity;
 * InvalidParameterCombination is the code some types return in a zone that does not offer them (graded U in
 * ../shared/notes/run-facts.md: no AWS page says so).
 */
export const NEXT_ON = new Set([
  'InsufficientInstanceCapacity',
  'InsufficientCapacity',
  'InsufficientHostCapacity',
  'InsufficientFreeAddressesInSubnet',
  'MaxSpotInstanceCountExceeded',
  'SpotMaxPriceTooLow',
  'Unsupported',
  'InvalidParameterCombination',
  'UnfulfillableCapacity',
  'ReservationCapacityExceeded',
]);

/** The vCPU quota errors: the launcher stops and names the quota. */
export const QUOTA_ERRORS = new Set(['VcpuLimitExceeded']);

/** The Service Quotas entry of an instance type's family and market. */
export function quotaFor(instanceType: string, market: Market): { code?: string; name: string } {
  const family = instanceType.split('.')[0].toLowerCase();
  const spot = market === 'spot';
  if (/^(g\d|vt\d)/.test(family)) {
    return spot
      ? { code: 'L-3819A6DF', name: 'All G and VT Spot Instance Requests' }
      : { code: 'L-DB2E81BA', name: 'Running On-Demand G and VT instances' };
  }
  if (/^p\d/.test(family)) {
    return spot
      ? { code: 'L-7212CCBC', name: 'All P Spot Instance Requests' }
      : { code: 'L-417A185B', name: 'Running On-Demand P instances' };
  }
  if (/^[acdhimrtz]\d/.test(family)) {
    return spot
      ? { code: 'L-34B43A08', name: 'All Standard (A, C, D, H, I, M, R, T, Z) Spot Instance Requests' }
      : { code: 'L-1216C47A', name: 'Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances' };
  }
  return {
    name: spot ? `All ${family.replace(/\d.*$/, '').toUpperCase()} Spot Instance Requests`
      : `Running On-Demand ${family.replace(/\d.*$/, '').toUpperCase()} instances`,
  };
}

/** The message of a vCPU quota error: which quota, and how to ask for more. */
export function quotaMessage(instanceType: string, market: Market, awsMessage: string, vcpus?: number): string {
  const quota = quotaFor(instanceType, market);
  const desired = vcpus ? `<your current quota + ${vcpus}>` : '<vCPUs you need>';
  const ask = quota.code
    ? `aws service-quotas request-service-quota-increase --service-code ec2 --quota-code ${quota.code} --desired-value ${desired}`
    : `find the quota "${quota.name}" in Service Quotas (aws service-quotas list-service-quotas --service-code ec2) and ` +
      `request it with aws service-quotas request-service-quota-increase --service-code ec2 --quota-code <code> --desired-value ${desired}`;
  return `the vCPU quota "${quota.name}"${quota.code ? ` (${quota.code})` : ''} of this region is too small for ${market} ${instanceType}` +
    `${vcpus ? ` (${vcpus} vCPUs)` : ''} (EC2: ${awsMessage}). Ask for more: ${ask}`;
}

/**
 * The image used when the launch template has none and no --image-id is given: the AWS Deep Learning Base OSS Nvidia
 * Driver GPU AMI (Amazon Linux 2023), by its public SSM parameter, which EC2 resolves at launch (`resolve:ssm:`).
 * Names: AWS Deep Learning AMIs Developer Guide, "Finding the ID of a DLAMI"
 * (https://docs.aws.amazon.com/dlami/latest/devguide/find-dlami-id.html):
 * `/aws/service/deeplearning/ami/$architecture/$ami_type/latest/ami-id`, architecture x86_64 or arm64. EC2 User Guide,
 * "Use a Systems Manager parameter instead of an AMI ID".
 */
export const DEFAULT_IMAGE_PARAMETERS = {
  x86_64: '/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-amazon-linux-2023/latest/ami-id',
  arm64: '/aws/service/deeplearning/ami/arm64/base-oss-nvidia-driver-gpu-amazon-linux-2023/latest/ami-id',
} as const;

/** The image of a launch, and how to say which it is. */
export interface ImageChoice {
  /** The `ImageId` to send; undefined: none (the launch template's image). */
  readonly imageId?: string;
  readonly description: string;
}

/** An AMI ID (8 or 17 hex digits) or `resolve:ssm:` and a parameter name, ARN, `:version` or `:label`. */
const IMAGE_ID_PATTERN = /^(ami-([0-9a-f]{8}|[0-9a-f]{17})|resolve:ssm:\S+)$/;

/**
 * Whether an instance type is arm64 (Graviton): `a1`, the families with a `g` after their generation (g5g, c7g,
 * m6gd, t4g, im4gn...) and the Grace ones (p6e-gb200). Heuristic on the name, as EC2's naming is.
 */
export function isArm64InstanceType(instanceType: string): boolean {
  const family = instanceType.split('.')[0].toLowerCase();
  return family === 'a1' || /^[a-z]+\d+g/.test(family) || /-gb\d/.test(family);
}

/**
 * The image of a launch: --image-id when given (it wins over the template's); else none when the launch template has
 * one; else the Deep Learning AMI of the instance types' architecture (all of them must share it).
 */
export function chooseImage(foundation: Foundation, instanceTypes: string[], imageIdFlag?: string): ImageChoice {
  const template = foundation.templateImageId;
  if (imageIdFlag !== undefined) {
    if (!IMAGE_ID_PATTERN.test(imageIdFlag)) {
      throw new CliError(`--image-id '${imageIdFlag}' is neither an AMI ID (ami-…) nor resolve:ssm:PARAMETER ` +
        '(a Systems Manager parameter holding an AMI ID, which EC2 resolves at launch)', 2);
    }
    return { imageId: imageIdFlag, description: `--image-id ${imageIdFlag}${template ? ` (instead of the launch template's ${template})` : ''}` };
  }
  if (template) return { description: `the launch template's ${template}` };
  const arm = instanceTypes.filter(isArm64InstanceType);
  const x86 = instanceTypes.filter(t => !isArm64InstanceType(t));
  if (arm.length > 0 && x86.length > 0) {
    throw new CliError(`the launch template has no image, and no one default image fits both ${arm.join(', ')} (arm64) and ` +
      `${x86.join(', ')} (x86_64): give --instance-types of one architecture, or --image-id`, 2);
  }
  const arch = arm.length > 0 ? 'arm64' : 'x86_64';
  const imageId = `resolve:ssm:${DEFAULT_IMAGE_PARAMETERS[arch]}`;
  return {
    imageId,
    description: `the AWS Deep Learning Base OSS Nvidia Driver GPU AMI (Amazon Linux 2023, ${arch}), ${imageId} ` +
      '(the launch template has no image; choose another with --image-id)',
  };
}

/** The tags of an attempt's instance and volumes (docs/RUNS.md, "The run ID and the attempt"). */
export function launchTags(foundation: Foundation, request: LaunchRequest): Tag[] {
  const tags: Record<string, string> = {
    Name: `chronos-${request.runId}`,
    Project: 'Chronos-Training',
    Environment: foundation.environment,
    CostCenter: foundation.costCenter,
    ManagedBy: 'chronos-training',
    MaxLifetimeHours: String(request.maxLifetimeHours),
    ChronosRunId: request.runId,
    ChronosAttempt: String(request.attempt),
    // The agent's bucket: the template's user data names none, so that it can be gzipped at synthesis (docs/RUNS.md).
    ChronosBucket: foundation.bucket,
  };
  return Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
}

/**
 * The RunInstances request of one try: the foundation's template, one type, one subnet, one market, never UserData;
 * an ImageId only when the launch has one (chooseImage), which then overrides the template's.
 */
export function runInstancesInput(foundation: Foundation, request: LaunchRequest, instanceType: string, subnetId: string,
  market: Market): RunInstancesCommandInput {
  const tags = launchTags(foundation, request);
  return {
    LaunchTemplate: { LaunchTemplateId: foundation.launchTemplateId, Version: '$Default' },
    ...(request.imageId ? { ImageId: request.imageId } : {}),
    InstanceType: instanceType as RunInstancesCommandInput['InstanceType'],
    SubnetId: subnetId,
    MinCount: 1,
    MaxCount: 1,
    ...(market === 'spot' ? {
      InstanceMarketOptions: {
        MarketType: 'spot',
        SpotOptions: { SpotInstanceType: 'one-time', InstanceInterruptionBehavior: 'terminate' },
      },
    } : {}),
    TagSpecifications: [
      { ResourceType: 'instance', Tags: tags },
      { ResourceType: 'volume', Tags: tags },
    ],
  };
}

/** Which (zone, type) pairs EC2 offers; undefined when it cannot say (no permission, no answer). */
async function offerings(clients: Clients, types: string[], zones: string[]): Promise<Set<string> | undefined> {
  try {
    const reply = await clients.ec2.send(new DescribeInstanceTypeOfferingsCommand({
      LocationType: 'availability-zone',
      Filters: [{ Name: 'instance-type', Values: types }, { Name: 'location', Values: zones }],
    }));
    const offered = new Set((reply.InstanceTypeOfferings ?? []).map(o => `${o.Location}/${o.InstanceType}`));
    return offered.size > 0 ? offered : undefined;
  } catch {
    return undefined;
  }
}

async function vcpusOf(clients: Clients, instanceType: string): Promise<number | undefined> {
  try {
    const reply = await clients.ec2.send(new DescribeInstanceTypesCommand({ InstanceTypes: [instanceType as any] }));
    return reply.InstanceTypes?.[0]?.VCpuInfo?.DefaultVCpus;
  } catch {
    return undefined;
  }
}

/**
 * Launches one attempt: for each market in order, each instance type in order of preference, each zone's subnet,
 * until one succeeds. Capacity errors (NEXT_ON) move on; a vCPU quota error stops with the quota to raise; any
 * other error stops.
 */
export async function launchWithFallback(clients: Clients, foundation: Foundation, request: LaunchRequest,
  log: (line: string) => void): Promise<Launched> {
  const zones = foundation.subnets.map(s => s.zone);
  const offered = await offerings(clients, request.instanceTypes, zones);
  const failures: string[] = [];
  let tries = 0;
  for (const market of request.markets) {
    for (const instanceType of request.instanceTypes) {
      for (const subnet of foundation.subnets) {
        const what = `${market} ${instanceType} in ${subnet.zone} (${subnet.subnetId})`;
        if (offered && !offered.has(`${subnet.zone}/${instanceType}`)) {
          log(`skip ${what}: not offered in this zone`);
          continue;
        }
        tries++;
        log(`try ${tries}: ${what}`);
        try {
          const input = runInstancesInput(foundation, request, instanceType, subnet.subnetId, market);
          const reply = await clients.ec2.send(new RunInstancesCommand(input));
          const instanceId = reply.Instances?.[0]?.InstanceId;
          if (!instanceId) throw new CliError(`RunInstances returned no instance for ${what}`);
          log(`launched ${instanceId}: ${what} (try ${tries})`);
          return { instanceId, instanceType, market, subnetId: subnet.subnetId, zone: subnet.zone, tries };
        } catch (e) {
          if (e instanceof CliError) throw e;
          const code = errorCode(e);
          const message = (e as Error).message ?? String(e);
          if (QUOTA_ERRORS.has(code)) {
            throw new CliError(quotaMessage(instanceType, market, message, await vcpusOf(clients, instanceType)));
          }
          if (!NEXT_ON.has(code)) throw new CliError(`launching ${what} failed: ${code}: ${message}`);
          log(`  ${code}: ${message}`);
          failures.push(`${what}: ${code}`);
          if (code === 'MaxSpotInstanceCountExceeded') {
            const q = quotaFor(instanceType, market);
            log(`  (the spot vCPU quota "${q.name}"${q.code ? ` ${q.code}` : ''} may be full)`);
          }
        }
      }
    }
  }
  if (tries === 0) {
    throw new CliError(`none of the instance types ${request.instanceTypes.join(', ')} is offered in the foundation's zones (${zones.join(', ')})`);
  }
  throw new CliError(`no capacity: all ${tries} tries failed (${failures.join('; ')}); try later, other --instance-types, ` +
    `${request.markets.includes('on-demand') ? '' : '--spot-fallback, '}or a foundation with more zones`);
}
