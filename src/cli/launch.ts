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
 * SpotMaxPriceTooLow, Unsupported, UnfulfillableCapacity, ReservationCapacityExceeded and InsufficientCapacity.
 * InvalidParameterCombination is not among them: it is a configuration error (see STOP_ON).
 */
export const NEXT_ON = new Set([
  'InsufficientInstanceCapacity',
  'InsufficientCapacity',
  'InsufficientHostCapacity',
  'InsufficientFreeAddressesInSubnet',
  'MaxSpotInstanceCountExceeded',
  'SpotMaxPriceTooLow',
  'Unsupported',
  'UnfulfillableCapacity',
  'ReservationCapacityExceeded',
]);

/**
 * The errors that say the request or the launch template is wrong, not that capacity is short: every other zone and
 * type would fail alike, so the launch stops at once with EC2's message (EC2 API Reference, "Error codes for the Amazon
 * EC2 API": InvalidParameterCombination, "Indicates an incorrect combination of parameters, or a missing parameter").
 */
export const STOP_ON = new Set(['InvalidParameterCombination']);

/**
 * The vCPU quota errors: the quota is per region and per quota family ("the instance bucket that the specified
 * instance type belongs to"), so the launcher skips the other types of that family in that market and goes on.
 */
export const QUOTA_ERRORS = new Set(['VcpuLimitExceeded']);

/**
 * The error of a spot request when the account has no Spot service-linked role (AWSServiceRoleForEC2Spot) and the
 * caller may not create it (EC2 User Guide, "Service-linked role for Spot Instances": the console creates it, an API
 * caller "must first ensure that this role exists"; the error is AuthFailure.ServiceLinkedRoleCreationNotPermitted,
 * "The provided credentials do not have permission to create the service-linked role for EC2 Spot Instances").
 */
export const SPOT_ROLE_ERROR = 'AuthFailure.ServiceLinkedRoleCreationNotPermitted';

/** Whether an error is the missing Spot service-linked role (by its code, or by EC2's words when the code is wrapped). */
export function isSpotRoleError(code: string, message: string): boolean {
  return code.endsWith(SPOT_ROLE_ERROR) || /permission to create the service-linked role for EC2 Spot/i.test(message);
}

/** The one line that explains the missing Spot service-linked role, and what to do once per account. */
export const SPOT_ROLE_ADVICE = 'this account has no Spot service-linked role (AWSServiceRoleForEC2Spot) and this principal may not create ' +
  'it; create it once with: aws iam create-service-linked-role --aws-service-name spot.amazonaws.com ' +
  '(or allow iam:CreateServiceLinkedRole with iam:AWSServiceName = spot.amazonaws.com)';

/**
 * The vCPU quota family of an instance type (EC2 User Guide, "Amazon EC2 service quotas", the On-Demand and Spot
 * vCPU quotas by family): `Standard` (A, C, D, H, I, M, R, T, Z, with any letters after the first: `im4gn`,
 * `is4gen`, `c7gn`), `G and VT` (`g*`, `gr*`, `vt*`), `P`, `F`, `X`, and the families whose letters would otherwise
 * look standard (`dl`, `hpc`, `inf`, `trn`, `mac`, `u-`), named by their letters.
 */
export function quotaFamily(instanceType: string): string {
  const family = instanceType.split('.')[0].toLowerCase();
  const special = /^(dl|hpc|inf|trn|mac|u)(?=[\d-])/.exec(family);
  if (special) return special[1].toUpperCase();
  if (/^(g|gr|vt)\d/.test(family)) return 'G and VT';
  if (/^p\d/.test(family)) return 'P';
  if (/^[acdhimrtz][a-z]*\d/.test(family)) return 'Standard';
  return family.replace(/\d.*$/, '').toUpperCase();
}

/** The Service Quotas entry of an instance type's quota family (quotaFamily) and market. */
export function quotaFor(instanceType: string, market: Market): { code?: string; name: string } {
  const family = quotaFamily(instanceType);
  const spot = market === 'spot';
  if (family === 'G and VT') {
    return spot
      ? { code: 'L-3819A6DF', name: 'All G and VT Spot Instance Requests' }
      : { code: 'L-DB2E81BA', name: 'Running On-Demand G and VT instances' };
  }
  if (family === 'P') {
    return spot
      ? { code: 'L-7212CCBC', name: 'All P Spot Instance Requests' }
      : { code: 'L-417A185B', name: 'Running On-Demand P instances' };
  }
  if (family === 'Standard') {
    return spot
      ? { code: 'L-34B43A08', name: 'All Standard (A, C, D, H, I, M, R, T, Z) Spot Instance Requests' }
      : { code: 'L-1216C47A', name: 'Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances' };
  }
  return { name: spot ? `All ${family} Spot Instance Requests` : `Running On-Demand ${family} instances` };
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
 * The RunInstances request of one try: the foundation's template at the version it published (foundation.ts), one
 * type, one subnet, one market, never UserData;
 * an ImageId only when the launch has one (chooseImage), which then overrides the template's.
 */
export function runInstancesInput(foundation: Foundation, request: LaunchRequest, instanceType: string, subnetId: string,
  market: Market): RunInstancesCommandInput {
  const tags = launchTags(foundation, request);
  return {
    LaunchTemplate: { LaunchTemplateId: foundation.launchTemplateId, Version: foundation.launchTemplateVersion },
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

/** How many times a RunInstances throttled by EC2 (RequestLimitExceeded) is sent again, and the first wait. */
export const THROTTLE_RETRIES = 5;
const THROTTLE_FIRST_WAIT_MS = 1000;

/**
 * Sends one try's RunInstances with the launch client (no SDK retries: context.ts, createClients), and sends it again
 * only when EC2 throttled it (RequestLimitExceeded), after an exponential wait with jitter: EC2 API Reference,
 * "Request throttling" (retry throttled mutating calls with exponential backoff). A capacity error is never repeated
 * here: the next zone, type or market is the retry.
 */
async function sendRunInstances(clients: Clients, input: RunInstancesCommandInput, sleep: (ms: number) => Promise<void>,
  log: (line: string) => void) {
  for (let retry = 0; ; retry++) {
    try {
      return await clients.ec2Launch.send(new RunInstancesCommand(input));
    } catch (e) {
      if (errorCode(e) !== 'RequestLimitExceeded' || retry >= THROTTLE_RETRIES) throw e;
      const wait = Math.round(THROTTLE_FIRST_WAIT_MS * 2 ** retry * (0.5 + Math.random() / 2));
      log(`  RequestLimitExceeded: EC2 throttles this account's requests; again in ${(wait / 1000).toFixed(1)} s`);
      await sleep(wait);
    }
  }
}

const realSleep = (ms: number) => new Promise<void>(resolve => setTimeout(resolve, ms));

/**
 * Launches one attempt: for each market in order, each instance type in order of preference, each zone's subnet,
 * until one succeeds. Capacity errors (NEXT_ON) move on; a vCPU quota error skips the rest of that quota family in
 * that market and moves on (the end names the quota to raise); a missing Spot service-linked role skips spot and
 * moves on to on-demand when allowed; a configuration error (STOP_ON) and any other error stop.
 */
export async function launchWithFallback(clients: Clients, foundation: Foundation, request: LaunchRequest,
  log: (line: string) => void, sleep: (ms: number) => Promise<void> = realSleep): Promise<Launched> {
  const zones = foundation.subnets.map(s => s.zone);
  const offered = await offerings(clients, request.instanceTypes, zones);
  const failures: string[] = [];
  /** The quotas found full, by `market/quota name`, with the message that says how to raise each. */
  const fullQuotas = new Map<string, string>();
  let spotRoleMissing = false;
  let tries = 0;
  for (const market of request.markets) {
    if (market === 'spot' && spotRoleMissing) continue;
    for (const instanceType of request.instanceTypes) {
      for (const subnet of foundation.subnets) {
        if (market === 'spot' && spotRoleMissing) break;
        const what = `${market} ${instanceType} in ${subnet.zone} (${subnet.subnetId})`;
        if (offered && !offered.has(`${subnet.zone}/${instanceType}`)) {
          log(`skip ${what}: not offered in this zone`);
          continue;
        }
        const quota = quotaFor(instanceType, market);
        if (fullQuotas.has(`${market}/${quota.name}`)) {
          log(`skip ${what}: the vCPU quota "${quota.name}" is full (VcpuLimitExceeded above)`);
          continue;
        }
        tries++;
        log(`try ${tries}: ${what}`);
        try {
          const input = runInstancesInput(foundation, request, instanceType, subnet.subnetId, market);
          const reply = await sendRunInstances(clients, input, sleep, log);
          const instanceId = reply.Instances?.[0]?.InstanceId;
          if (!instanceId) throw new CliError(`RunInstances returned no instance for ${what}`);
          log(`launched ${instanceId}: ${what} (try ${tries})`);
          return { instanceId, instanceType, market, subnetId: subnet.subnetId, zone: subnet.zone, tries };
        } catch (e) {
          if (e instanceof CliError) throw e;
          const code = errorCode(e);
          const message = (e as Error).message ?? String(e);
          if (market === 'spot' && isSpotRoleError(code, message)) {
            spotRoleMissing = true;
            failures.push(`${what}: ${code}`);
            const next = request.markets.includes('on-demand') ? 'going on with on-demand' : 'and this run allows spot only';
            log(`  ${code}: ${SPOT_ROLE_ADVICE}; ${next}`);
            if (!request.markets.includes('on-demand')) {
              throw new CliError(`launching ${what} failed: ${code}: ${SPOT_ROLE_ADVICE}; or launch on-demand (--on-demand, --spot-fallback)`);
            }
            continue;
          }
          if (QUOTA_ERRORS.has(code)) {
            const text = quotaMessage(instanceType, market, message, await vcpusOf(clients, instanceType));
            fullQuotas.set(`${market}/${quota.name}`, text);
            failures.push(`${what}: ${code}`);
            log(`  ${code}: ${text}; skipping the other ${market} types of that quota`);
            continue;
          }
          if (STOP_ON.has(code)) {
            throw new CliError(`launching ${what} failed: ${code}: ${message} (EC2 refuses the request or the launch template ` +
              'as they are, in any zone: fix them rather than retry)');
          }
          if (!NEXT_ON.has(code)) throw new CliError(`launching ${what} failed: ${code}: ${message}`);
          log(`  ${code}: ${message}`);
          failures.push(`${what}: ${code}`);
          if (code === 'MaxSpotInstanceCountExceeded') {
            log(`  (the spot vCPU quota "${quota.name}"${quota.code ? ` ${quota.code}` : ''} may be full)`);
          }
        }
      }
    }
  }
  if (fullQuotas.size > 0) {
    throw new CliError(`${[...fullQuotas.values()].join('; ')}${failures.length > fullQuotas.size ? ` (all ${tries} tries failed: ` +
      `${failures.join('; ')})` : ''}`);
  }
  if (tries === 0) {
    throw new CliError(`none of the instance types ${request.instanceTypes.join(', ')} is offered in the foundation's zones (${zones.join(', ')})`);
  }
  throw new CliError(`no capacity: all ${tries} tries failed (${failures.join('; ')}); try later, other --instance-types, ` +
    `${request.markets.includes('on-demand') ? '' : '--spot-fallback, '}or a foundation with more zones`);
}
